/**
 * The stack bench:scale and bench:interactive run on: a database of their own (migrated, dropped at the end), a
 * Temporal dev server, a loopback receiver, worker processes (every family) and the API in the bench's process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { createApp } from '../api/app.js';
import { createOpsflowClient, type OpsflowClient } from '../api/client/index.js';
import { loadConfig, type Config } from '../lib/config.js';
import { createPool, ensureDatabase, migrate } from '../lib/db.js';
import { createLogger } from '../lib/logger.js';
import { taskQueues } from '../lib/task-queues.js';
import { connectClient, temporalSettings } from '../lib/temporal.js';
import { startDevServer } from '../scripts/dev-server.js';
import { provisionTemporalCli } from '../scripts/provision-temporal.js';
import { benchEnv, dropBenchDatabase, freePort, root, sleep } from './common.js';

export const BENCH_API_KEY = 'bench-key-0123456789abcdef-0123456789';

export async function benchStack(name: string, receive: (req: IncomingMessage, res: ServerResponse) => void) {
  const dbName = `opsflow_bench_${name}_${process.pid}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, 10);
  await migrate(pool);
  const server = await startDevServer({
    bin: await provisionTemporalCli(),
    port: await freePort(),
    namespace: 'default',
  });
  const env = benchEnv({ name, temporalAddress: server.address, databaseUrl, apiKey: BENCH_API_KEY });
  const receiver = createServer(receive);
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const client = await connectClient(temporalSettings(loadConfig(env)));
  const queues = taskQueues('bench');
  const log = createLogger('warn');

  return {
    pool,
    client,
    /** The environment the workers and the API run with (benchEnv). */
    env,
    receiverUrl: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
    /** A worker process of every family with this environment. */
    spawnWorker(workerEnv: Record<string, string> = env): ChildProcess {
      return spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/main.ts')], {
        env: { ...process.env, ...workerEnv },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
    },
    /** The API with this configuration on a free loopback port, and a typed client of it. */
    async serveApi(config: Config): Promise<{ url: string; opsflow: OpsflowClient; close(): void }> {
      const app = createApp({ config, apiKeys: [BENCH_API_KEY], pool, temporal: client, queues, log });
      const port = await freePort();
      const api = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
      const url = `http://127.0.0.1:${port}`;
      return {
        url,
        opsflow: createOpsflowClient({ baseUrl: url, apiKey: BENCH_API_KEY }),
        close: () => api.close(),
      };
    },
    /** The `n` a counting query answers. */
    count: async (sql: string, params: unknown[] = []): Promise<number> =>
      Number((await pool.query<{ n: string }>(sql, params)).rows[0]!.n),
    /** Polls `check` every 250 ms until it holds, failing the bench after `timeoutMs`. */
    until: async (what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
        await sleep(250);
      }
    },
    async close(): Promise<void> {
      receiver.close();
      await client.connection.close();
      await pool.end();
      await server.stop();
      await dropBenchDatabase(dbName);
    },
  };
}
