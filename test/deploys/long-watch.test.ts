/**
 * Bounded deploy histories (issue 18): a watch window continues as new when Temporal suggests it. The dev server
 * here suggests it after 90 events (production's default is 4,096), so a 20 s watch at 1 s samples spans
 * several runs: the target stays locked, the API follows the live run, a failure in a later run still rolls
 * back, and a cancel reaches the run that is watching.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { deployWorkflowId } from '../../lib/deploys/contract.js';
import { keepSample } from '../../lib/deploys/plan.js';
import { startDevServer, type DevServer } from '../../scripts/dev-server.js';
import { freePort } from '../global-setup.js';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from '../helpers/harness.js';
import { saveHistory } from '../helpers/histories.js';
import { serviceTarget, stopServices } from '../helpers/deploy-service.js';
import { waitFor } from '../helpers/wait.js';

// Low enough that a 20 s watch spans at least three runs even when a loaded machine takes fewer samples in it
// (at 120 a CI run under load made two runs of 133 and 140 events).
const SUGGEST_AFTER_EVENTS = 90;

describe('keeping health samples (pure)', () => {
  it('keeps the first 100 and the newest samples, counting the ones dropped', () => {
    const list: { samples: number[]; samplesOmitted?: number } = { samples: [] };
    for (let i = 0; i < 1000; i++) keepSample(list, i, 500);
    expect(list.samples).toHaveLength(500);
    expect(list.samplesOmitted).toBe(500);
    expect(list.samples.slice(0, 100)).toEqual([...Array(100).keys()]);
    expect(list.samples.at(100)).toBe(600);
    expect(list.samples.at(-1)).toBe(999);
  });

  it('refuses a health gate of more than 1,500 samples, naming the target and field', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'targets-'));
    const file = path.join(dir, 'targets.json');
    const gate = (timeoutSec: number, intervalSec: number) =>
      writeFile(
        file,
        JSON.stringify([
          {
            name: 'web',
            environment: 'staging',
            commands: { deploy: 'true' },
            health: { url: 'http://127.0.0.1:1/h', timeoutSec, intervalSec },
          },
        ]),
      );
    const env = { DATABASE_URL: 'postgres://u@h:5432/db', DEPLOY_TARGETS_FILE: file };
    await gate(3600, 1);
    expect(() => loadConfig(env)).toThrow(/web\.health\.timeoutSec.*1500 samples/s);
    await gate(3600, 3);
    expect(loadConfig(env).deploys.targets[0]!.health.timeoutSec).toBe(3600);
    await rm(dir, { recursive: true });
  });
});

describe('a long watch window continues as new', () => {
  let temporal: DevServer;
  let h: Harness;
  let workers: TestWorkers;
  let dir: string;
  const ports: Record<string, number> = {};
  const api = (p: string, body?: unknown) =>
    testApp(h).request(p, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-long-watch-'));
    for (const n of ['long', 'longfail', 'longcancel']) ports[n] = await freePort();
    const target = (name: string) => serviceTarget(dir, name, ports[name]!, { watchWindowSec: 20 });
    const file = path.join(dir, 'targets.json');
    await writeFile(file, JSON.stringify({ targets: [target('long'), target('longfail'), target('longcancel')] }));
    temporal = await startDevServer({
      bin: inject('temporalCliPath'),
      port: await freePort(),
      namespace: 'default',
      dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': SUGGEST_AFTER_EVENTS },
    });
    h = await createHarness({ TEMPORAL_ADDRESS: temporal.address, DEPLOY_TARGETS_FILE: file });
    workers = await startWorkers(h, ['deploys']);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await temporal?.stop();
    await stopServices(dir, Object.keys(ports));
    await rm(dir, { recursive: true, force: true });
  });

  async function deploy(target: string, version: string): Promise<string> {
    const res = await api('/v1/deploys', { target, version });
    expect(res.status, await res.clone().text()).toBe(202);
    return ((await res.json()) as { id: string }).id;
  }
  const row = async (id: string) =>
    (await (await api(`/v1/deploys/${encodeURIComponent(id)}`)).json()) as {
      status: string;
      finishedAt: string | null;
      samples: { phase: string; ok: boolean }[];
      samplesOmitted: number;
      timeline: { step: string; detail?: string }[];
      live: { step: string; timeline: { step: string; detail?: string }[] } | null;
    };
  const finished = (id: string) =>
    waitFor(
      () => row(id),
      (r) => r.finishedAt !== null,
      90_000,
    );
  /**
   * Every run of the target's latest deploy, oldest first: walked back from the latest run through each run's
   * start event (consistent, unlike visibility, which may lag the last moments of a run).
   */
  async function runsOf(target: string): Promise<{ runId: string; status: string; events: number }[]> {
    const runs: { runId: string; status: string; events: number }[] = [];
    let runId: string | undefined = (await h.client.workflow.getHandle(deployWorkflowId(target)).describe()).runId;
    while (runId) {
      const handle: WorkflowHandle = h.client.workflow.getHandle(deployWorkflowId(target), runId);
      const events: temporal.api.history.v1.IHistoryEvent[] = (await handle.fetchHistory()).events ?? [];
      runs.unshift({ runId, status: (await handle.describe()).status.name, events: events.length });
      runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
    }
    return runs;
  }
  const serving = async (name: string) =>
    ((await (await fetch(`http://127.0.0.1:${ports[name]}/health`)).json()) as { version: string }).version;

  it('watches across runs with the target locked, the row following the live run, and succeeds', async () => {
    const id = await deploy('long', '1.0.0');
    // The watch has gone on in a second run: the API finds that run (live progress) and the lock holds.
    const during = await waitFor(
      () => row(id),
      (r) => r.live?.timeline.some((e) => /continued in run 2/.test(e.detail ?? '')) ?? false,
      60_000,
    );
    expect(during.live?.step).toBe('watch');
    const second = await api('/v1/deploys', { target: 'long', version: '1.0.1' });
    expect(second.status).toBe(409);
    expect(await second.text()).toContain(id);

    const done = await finished(id);
    expect(done.status).toBe('succeeded');
    // The row reads finished before the last run has sent its report and completed: wait for the chain's end.
    await h.client.workflow.getHandle(deployWorkflowId('long')).result();
    const watched = done.samples.filter((s) => s.phase === 'watch');
    expect(watched.length).toBeGreaterThanOrEqual(12);
    expect(watched.every((s) => s.ok)).toBe(true);
    expect(done.samplesOmitted).toBe(0);

    const runs = await runsOf('long');
    expect(runs.length, JSON.stringify(runs)).toBeGreaterThanOrEqual(3);
    expect(runs.slice(0, -1).every((r) => r.status === 'CONTINUED_AS_NEW')).toBe(true);
    expect(runs.at(-1)!.status).toBe('COMPLETED');
    // Each run stopped soon after the suggestion: no run's history grows with the watch window.
    for (const r of runs) expect(r.events).toBeLessThan(SUGGEST_AFTER_EVENTS + 40);
    const { rows } = await h.pool.query<{ run_id: string }>('SELECT run_id FROM opsflow.deploys WHERE id = $1', [id]);
    expect(rows[0]!.run_id).toBe(runs.at(-1)!.runId);
    // One outcome for the whole chain: the report (and its record) came once, from the last run.
    expect(done.timeline.filter((e) => e.step === 'done')).toHaveLength(1);
    expect(await await h.client.workflow.getHandle(deployWorkflowId('long'), runs[0]!.runId).result()).toMatchObject({
      status: 'succeeded',
    });
    await saveHistory(deployWorkflowId('long'), 'deploys/watch-continued.json', runs[1]!.runId, temporal.address);
  }, 120_000);

  it('a failure in a later run of the watch still rolls back to the previous version', async () => {
    expect((await finished(await deploy('longfail', '1.0.0'))).status).toBe('succeeded');
    // Healthy for the gate and 12 checks of the watch, then 500: the failure comes after a continue-as-new.
    const done = await finished(await deploy('longfail', '1.1.0-failsafter14'));
    expect(done.status).toBe('rolled_back');
    expect(done.timeline.some((e) => /continued in run/.test(e.detail ?? ''))).toBe(true);
    expect(done.timeline.map((e) => e.step)).toContain('rollback-health-gate');
    expect(await serving('longfail')).toBe('1.0.0');
  }, 150_000);

  it('a cancel reaches the run that is watching: the previous version is put back', async () => {
    expect((await finished(await deploy('longcancel', '1.0.0'))).status).toBe('succeeded');
    const id = await deploy('longcancel', '1.1.0');
    await waitFor(
      () => row(id),
      (r) => r.live?.timeline.some((e) => /continued in run/.test(e.detail ?? '')) ?? false,
      60_000,
    );
    const res = await api(`/v1/deploys/${encodeURIComponent(id)}/cancel`, {});
    expect(res.status, await res.clone().text()).toBe(202);
    const done = await finished(id);
    expect(done.status).toBe('canceled');
    expect(await serving('longcancel')).toBe('1.0.0');
  }, 150_000);
});
