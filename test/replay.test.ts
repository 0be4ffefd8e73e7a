import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { describe, expect, inject, it } from 'vitest';
import { installRuntime } from './helpers/harness.js';
import { historiesDir } from './helpers/histories.js';

installRuntime();

async function historyFiles(): Promise<string[]> {
  const entries = await readdir(historiesDir, { recursive: true });
  return entries
    .filter((f) => f.endsWith('.json'))
    .map((f) => path.join(historiesDir, f))
    .sort();
}

describe('replay of recorded histories', () => {
  it('has a history for every outcome recorded so far', async () => {
    const files = (await historyFiles()).map((f) => path.relative(historiesDir, f));
    expect(files).toEqual(
      expect.arrayContaining([
        'system-check/degraded.json',
        'system-check/ok.json',
        'webhooks/delivered.json',
        'webhooks/dead-lettered.json',
        'webhooks/fast-delivered.json',
        'webhooks/fast-retried.json',
        'webhooks/fifo-sequencer.json',
        'webhooks/paced.json',
        'webhooks/recover.json',
        'subscriptions/expired.json',
        'subscriptions/reminder-canceled.json',
        'subscriptions/renamed-canceled.json',
        // renamed-canceled.json as a worker of 0.3.0 recorded it, with no handler for the PUT's signal: the events
        // the new handler adds (the patch marker, the timer re-armed) taken out and the ids after them renumbered.
        'subscriptions/signal-unhandled-before-upgrade.json',
        'subscriptions/renewed.json',
        'backups/verified.json',
        'backups/failed.json',
        'backups/restore.json',
        'backups/drill.json',
        'deploys/succeeded.json',
        'deploys/rolled-back.json',
        'deploys/backup-aborted.json',
        'deploys/watch-continued.json',
      ]),
    );
  });

  it('replays every history against the current workflow code without nondeterminism', async () => {
    const files = await historyFiles();
    const histories = files.map(async (file) => ({
      workflowId: path.relative(historiesDir, file),
      history: JSON.parse(await readFile(file, 'utf8')) as unknown,
    }));
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { codePath: inject('workflowBundlePath') } },
      (async function* () {
        for (const h of histories) yield await h;
      })(),
    )) {
      replayed += 1;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(files.length);
  });

  it('detects an incompatible change (negative case)', async () => {
    const history = JSON.parse(await readFile(path.join(historiesDir, 'system-check/ok.json'), 'utf8')) as unknown;
    const workflowsPath = fileURLToPath(new URL('./fixtures/nondeterministic-workflows.ts', import.meta.url));
    await expect(Worker.runReplayHistory({ workflowsPath }, history)).rejects.toBeInstanceOf(DeterminismViolationError);
  });
});
