/**
 * Once per `npm test`: provision the Temporal CLI, start one headless dev server (or, for `npm run
 * test:cluster`, the SQL-backed server) on free ports with the
 * opsflow search attributes, create a fresh PostgreSQL database (dropped afterwards) with migrations
 * applied, and bundle the workflows once. Test files receive these through `inject()`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createPool, ensureDatabase, migrate, quoteIdent } from '../lib/db.js';
import { startTemporalCluster } from '../scripts/cluster.js';
import { startDevServer } from '../scripts/dev-server.js';
import { provisionPromtool } from '../scripts/provision-promtool.js';
import { provisionTemporalCli } from '../scripts/provision-temporal.js';
import { createLogger } from '../lib/logger.js';
import { bundleWorkflows } from '../worker/workers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
    adminDatabaseUrl: string;
    workflowBundlePath: string;
    temporalCliPath: string;
    promtoolPath: string;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export default async function setup(project: TestProject) {
  const baseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `opsflow_test_${process.pid}_${Date.now().toString(36)}`;
  const url = new URL(baseUrl);
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  url.pathname = '/postgres';
  const adminDatabaseUrl = url.toString();

  // Built from Go modules on the first run of a fresh machine (minutes, one after the other: 2 cores), then cached.
  const bin = await provisionTemporalCli();
  const promtool = await provisionPromtool();
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, 2);
  await migrate(pool);
  await pool.end();

  // OPSFLOW_TEST_CLUSTER=1 (`npm run test:cluster`): the full Temporal server on PostgreSQL instead of the
  // dev server, fresh databases per run.
  const server = process.env.OPSFLOW_TEST_CLUSTER
    ? await startTemporalCluster({
        portBase: Number(process.env.CLUSTER_PORT_BASE ?? 17233),
        dbPrefix: `opsflow_temporal_test`,
        fresh: true,
      })
    : await startDevServer({ bin, port: await freePort(), namespace: 'default' });
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'opsflow-test-'));
  const workflowBundlePath = path.join(tmp, 'workflow-bundle.js');
  await writeFile(workflowBundlePath, (await bundleWorkflows(createLogger('warn'))).code);

  project.provide('temporalAddress', server.address);
  project.provide('databaseUrl', databaseUrl);
  project.provide('adminDatabaseUrl', adminDatabaseUrl);
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('temporalCliPath', bin);
  project.provide('promtoolPath', promtool);

  return async () => {
    await server.stop();
    await rm(tmp, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: adminDatabaseUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`);
    await admin.end();
  };
}
