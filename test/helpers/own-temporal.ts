/**
 * A harness on its own Temporal dev server and its own database, for tests that kill the server: the server keeps
 * its state in a SQLite file, so `restart()` brings it back on what it had (the shared test server is not
 * touched).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { createPool, migrate } from '../../lib/db.js';
import { startDevServer, type DevServer } from '../../scripts/dev-server.js';
import { freePort } from '../global-setup.js';
import { databaseUrlOf, dropDatabase, recreateDatabase } from './databases.js';
import { createHarness, type Harness } from './harness.js';

export interface OwnTemporalStack {
  h: Harness;
  /** SIGKILLs the server (no graceful shutdown) and waits until it is gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and state file. */
  restart(): Promise<void>;
  /** Closes the harness, stops the server, drops the database and removes the state. */
  close(): Promise<void>;
}

export async function startOwnTemporalStack(name: string): Promise<OwnTemporalStack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `opsflow-${name}-`));
  const port = await freePort();
  const database = `opsflow_${name.replace(/\W/g, '_')}_${process.pid}`;
  const devServer = () =>
    startDevServer({
      bin: inject('temporalCliPath'),
      port,
      namespace: 'default',
      dbFile: path.join(dir, 'temporal.db'),
    });
  let server: DevServer | undefined = await devServer();
  await recreateDatabase(database);
  const pool = createPool(databaseUrlOf(database), 2);
  await migrate(pool);
  await pool.end();
  const h = await createHarness({
    DATABASE_URL: databaseUrlOf(database),
    TEMPORAL_ADDRESS: server.address,
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
    PORT: String(await freePort()),
  });
  return {
    h,
    async kill() {
      server?.process.kill('SIGKILL');
      await server?.stop();
      server = undefined;
    },
    async restart() {
      server = await devServer();
    },
    async close() {
      await h.close();
      await server?.stop();
      await dropDatabase(database);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
