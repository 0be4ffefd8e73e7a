/**
 * What a test file needs to run real code against the run's Temporal server and database: a config,
 * a pool, a client, and a worker with the real activities on a task queue of its own.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { Runtime, type NativeConnection, type Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db.js';
import { createLogger, temporalLogger, type Logger } from '../../lib/logger.js';
import { createMailer, type Mailer } from '../../lib/mailer.js';
import type { Family, TaskQueues } from '../../lib/task-queues.js';
import { taskQueues } from '../../lib/task-queues.js';
import { connectClient, connectWorker, temporalSettings } from '../../lib/temporal.js';
import { createApp } from '../../api/app.js';
import type { ApiDeps } from '../../api/deps.js';
import { createWorkers, type WorkerDeps } from '../../worker/workers.js';

export const TEST_API_KEY = 'test-key-0123456789abcdef-0123456789';
/** 32 bytes, base64: what `openssl rand -base64 32` prints. */
export const TEST_ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');

let runtimeInstalled = false;

export function testLog(): Logger {
  return createLogger(process.env.TEST_LOG_LEVEL ?? 'warn', { process: 'test' });
}

export interface Harness {
  config: Config;
  pool: Pool;
  client: Client;
  log: Logger;
  mailer: Mailer;
  queues: TaskQueues;
  dataDir: string;
  close(): Promise<void>;
}

/** A config as production would parse it, pointed at this run's services, with a unique task-queue prefix. */
export async function createHarness(env: Record<string, string> = {}): Promise<Harness> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-data-'));
  const config = loadConfig({
    DATABASE_URL: inject('databaseUrl'),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    OPSFLOW_API_KEYS: TEST_API_KEY,
    OPSFLOW_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    OPSFLOW_TASK_QUEUE_PREFIX: `t-${randomBytes(4).toString('hex')}`,
    OPSFLOW_DATA_DIR: dataDir,
    ...env,
  });
  const log = testLog();
  const pool = createPool(config.databaseUrl, 4);
  const client = await connectClient(temporalSettings(config));
  const mailer = createMailer({
    smtpUrl: config.mail.smtpUrl,
    from: config.mail.from,
    outboxDir: path.join(dataDir, 'outbox'),
    log,
  });
  return {
    config,
    pool,
    client,
    log,
    mailer,
    queues: taskQueues(config.taskQueuePrefix),
    dataDir,
    close: async () => {
      await client.connection.close();
      mailer.close();
      await pool.end();
    },
  };
}

/** The SDK's runtime, once per test process, logging through pino at the test level. */
export function installRuntime(log: Logger = testLog()): void {
  if (runtimeInstalled) return;
  Runtime.install({ logger: temporalLogger(log), shutdownSignals: [] });
  runtimeInstalled = true;
}

export interface TestWorkers {
  workers: Worker[];
  /** The workers' own connection (a client on it can start workflows eagerly). */
  connection: NativeConnection;
  stop(): Promise<void>;
}

/** What the workers' activities get, from the harness (tests that call one activity directly use it too). */
export const workerDeps = (h: Harness): WorkerDeps => ({
  config: h.config,
  pool: h.pool,
  mailer: h.mailer,
  log: h.log,
  client: h.client,
  queues: h.queues,
});

/** Starts the real workers (real activities, the run's workflow bundle) for the given families. */
export async function startWorkers(
  h: Harness,
  families: Family[],
  deps: Partial<WorkerDeps> = {},
): Promise<TestWorkers> {
  installRuntime(h.log);
  const connection: NativeConnection = await connectWorker(temporalSettings(h.config));
  const workers = await createWorkers({
    connection,
    namespace: h.config.temporal.namespace,
    queues: h.queues,
    deps: { ...workerDeps(h), ...deps },
    workflowBundle: { codePath: inject('workflowBundlePath') },
    families,
  });
  const running = Promise.all(workers.map((w) => w.run()));
  return {
    workers,
    connection,
    stop: async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
      await connection.close();
    },
  };
}

/** The production app on the harness's real dependencies; `overrides` swaps one (a dead pool, say). */
export function testApp(h: Harness, overrides: Partial<ApiDeps> = {}) {
  return createApp({
    config: h.config,
    apiKeys: [TEST_API_KEY],
    pool: h.pool,
    temporal: h.client,
    queues: h.queues,
    log: h.log,
    ...overrides,
  });
}
