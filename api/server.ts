/** Listens: builds the app from real dependencies and serves it until SIGINT/SIGTERM. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { resolveApiKeys } from '../lib/keys/bootstrap.js';
import { apiExposureProblem, ConfigError, loadConfigOrExit, type Config } from '../lib/config.js';
import { createPool, migrate } from '../lib/db.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { createSecretBox, SecretBoxError } from '../lib/secret-box.js';
import { onShutdownSignal } from '../lib/signals.js';
import { taskQueues } from '../lib/task-queues.js';
import { connectClient, temporalSettings } from '../lib/temporal.js';
import { startTemporalProbe } from '../lib/temporal-probe.js';
import { createApp } from './app.js';

/** How long an API request waits for a PostgreSQL connection before it answers 503. */
export const API_DB_CONNECT_TIMEOUT_MS = 3000;

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

export async function startApi(opts: {
  config: Config;
  log: Logger;
  apiKeys: string[];
  temporalAddress?: string;
  /**
   * The workers' connection when they run in this process (`npm start`): the API's client runs on it, so the
   * server can hand a new delivery's first workflow task straight to them (eager start). Closed by the workers.
   */
  workerConnection?: NativeConnection;
}): Promise<RunningApi> {
  const { config, log } = opts;
  const exposure = apiExposureProblem(config);
  if (exposure) throw new ConfigError([exposure]);
  try {
    createSecretBox(config.encryption);
  } catch (err) {
    if (err instanceof SecretBoxError) throw new ConfigError([err.message]);
    throw err;
  }
  // A request waits at most this long for a PostgreSQL connection, then answers 503 with Retry-After: the compose
  // drill that stops PostgreSQL saw a connection opened as the server went down hang for the pool's default 10 s.
  const pool = createPool(config.databaseUrl, config.databasePoolMax, API_DB_CONNECT_TIMEOUT_MS);
  // The schema this build reads and writes, before the first request: in an upgrade the new API may start before
  // the new worker has migrated (under the same advisory lock, so one process applies each migration), and a
  // publish naming a column that is not there yet would answer 500. PostgreSQL down now: the worker migrates later,
  // and requests answer 503 until then.
  await migrate(pool, log).catch((err: unknown) =>
    log.warn({ err }, 'migrations not applied at API start (PostgreSQL unreachable?); the first worker applies them'),
  );
  const temporal = opts.workerConnection
    ? new Client({ connection: opts.workerConnection, namespace: config.temporal.namespace })
    : await connectClient(temporalSettings(config, opts.temporalAddress));
  const probe = startTemporalProbe(temporal.connection);
  const app = createApp({
    probe,
    config,
    apiKeys: opts.apiKeys,
    pool,
    temporal,
    queues: taskQueues(config.taskQueuePrefix),
    log,
  });
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolve(s));
    s.once('error', reject);
  });
  const shown = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${shown}:${config.port}`;
  log.info({ url }, 'API listening');
  return {
    url,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await probe.stop();
      if (!opts.workerConnection) await temporal.connection.close();
      await pool.end();
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const config = loadConfigOrExit();
  const log = createLogger(config.logLevel, { process: 'api' }, { format: config.logFormat });
  try {
    const { keys } = await resolveApiKeys(config, { generate: false });
    const api = await startApi({ config, log, apiKeys: keys });
    onShutdownSignal(log, 'closing the API', () => api.close());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`opsflow: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    log.fatal({ err }, 'API failed to start');
    process.exit(1);
  }
}
