/** Runs opsflow entry points as real child processes (to kill them like a crash would). */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../global-setup.js';
import type { Harness } from './harness.js';
import { waitFor } from './wait.js';

export interface Child {
  process: ChildProcess;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnEntry(script: string, env: Record<string, string>): Child {
  // node itself with tsx as a loader (not the tsx wrapper, which would leave its node child running on
  // SIGKILL), so killing this process kills the worker.
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(script)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => (out = (out + b.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    process: child,
    output: () => out,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** The environment that points a child process at the harness's services and queues. */
export function harnessEnv(h: Harness, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: h.config.temporal.address!,
    DATABASE_URL: h.config.databaseUrl,
    OPSFLOW_TASK_QUEUE_PREFIX: h.config.taskQueuePrefix,
    OPSFLOW_DATA_DIR: h.dataDir,
    OPSFLOW_API_KEYS: h.config.apiKeys!.join(','),
    OPSFLOW_ENCRYPTION_KEY: h.config.encryption.current!.toString('base64'),
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** The API as a process of its own on a free loopback port; returns once it answers /health (killed if it never does). */
export async function spawnApi(h: Harness, extra: Record<string, string> = {}): Promise<{ api: Child; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const api = spawnEntry('api/server.ts', harnessEnv(h, { PORT: String(port), HOST: '127.0.0.1', ...extra }));
  await waitFor(
    () =>
      fetch(`${url}/health`).then(
        (r) => r.status,
        () => 0,
      ),
    (s) => s === 200,
    60_000,
  ).catch(async (err: Error) => {
    const output = api.output();
    await api.kill('SIGKILL');
    throw new Error(`${err.message}\n${output}`);
  });
  return { api, url };
}
