/**
 * Replay fixtures. With UPDATE_HISTORIES=1, tests that run a workflow to an outcome save its history to
 * test/histories/<family>/<outcome>.json (exported by the temporal CLI, the format Temporal's replayer
 * reads); the replay test replays every file there against the current workflow code.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { inject } from 'vitest';

const run = promisify(execFile);

export const historiesDir = path.resolve('test/histories');

export async function saveHistory(
  workflowId: string,
  file: string,
  runId?: string,
  address = inject('temporalAddress'),
): Promise<void> {
  if (!process.env.UPDATE_HISTORIES) return;
  const { stdout } = await run(
    inject('temporalCliPath'),
    [
      'workflow',
      'show',
      '--workflow-id',
      workflowId,
      ...(runId ? ['--run-id', runId] : []),
      '--address',
      address,
      '--output',
      'json',
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const target = path.join(historiesDir, file);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, stdout);
}
