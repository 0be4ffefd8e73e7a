/**
 * `npm run cluster`: the production topology on this machine — the full Temporal server (not the dev server)
 * on the local PostgreSQL, two opsflow worker processes and the API.
 *
 * 1. Finds or builds `temporal-server` and `temporal-sql-tool` (go.temporal.io/server v1.29.1, cmd/server
 *    and cmd/tools/sql) into .tools/ with Go, once.
 * 2. Creates the Temporal databases and schemas in PostgreSQL (idempotent: update-schema applies only
 *    what is missing), from the schema files of that same module version.
 * 3. Starts the server with temporal-config/postgres.yaml and temporal-config/dynamicconfig.yaml, waits for
 *    it, and runs temporal-config/setup.sh (namespace + search attributes).
 * 4. Starts two workers and the API against it (not when used as a library by the cluster tests).
 *
 * Environment: CLUSTER_PORT_BASE (default 7233: frontend 7233, history 7234, matching 7235, worker 7239),
 * CLUSTER_DB_PREFIX (default opsflow_temporal), TEMPORAL_DB_HOST/PORT/USER/PASSWORD (default the local
 * PostgreSQL as postgres), plus opsflow's own variables for the workers and the API.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { access, constants, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import { loadConfigOrExit } from '../lib/config.js';
import { ensureDatabase, quoteIdent } from '../lib/db.js';
import { projectRoot, provisionTemporalCli } from './provision-temporal.js';

const run = promisify(execFile);

export const TEMPORAL_SERVER_VERSION = '1.29.1';
const MODULE = 'go.temporal.io/server';
const toolsDir = path.join(projectRoot, '.tools', `temporal-server-${TEMPORAL_SERVER_VERSION}`);
const serverBin = path.join(toolsDir, 'temporal-server');
const sqlToolBin = path.join(toolsDir, 'temporal-sql-tool');

const say = (m: string) => process.stderr.write(`cluster: ${m}\n`);

async function exists(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** The server and SQL tool binaries, built with `go install` into .tools/ the first time. */
export async function provisionTemporalServer(): Promise<{ server: string; sqlTool: string; schemaDir: string }> {
  if (!(await exists(serverBin)) || !(await exists(sqlToolBin))) {
    say(
      `building temporal-server and temporal-sql-tool v${TEMPORAL_SERVER_VERSION} with Go (first run only; several minutes)`,
    );
    const build = path.join(toolsDir, 'build');
    await mkdir(build, { recursive: true });
    try {
      await run(
        'go',
        [
          'install',
          `${MODULE}/cmd/server@v${TEMPORAL_SERVER_VERSION}`,
          `${MODULE}/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}`,
        ],
        { env: { ...process.env, GOBIN: build, CGO_ENABLED: '0' }, maxBuffer: 64 * 1024 * 1024, timeout: 40 * 60_000 },
      );
    } catch (err) {
      throw new Error(
        `could not build the Temporal server with Go (need Go >= 1.24 and access to the Go module proxy): ${(err as Error).message}`,
      );
    }
    await run('mv', [path.join(build, 'server'), serverBin]);
    await run('mv', [path.join(build, 'sql'), sqlToolBin]);
  }
  // The schema files of exactly this version, from the Go module cache.
  const { stdout } = await run('go', ['mod', 'download', '-json', `${MODULE}@v${TEMPORAL_SERVER_VERSION}`], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const dir = (JSON.parse(stdout) as { Dir: string }).Dir;
  return { server: serverBin, sqlTool: sqlToolBin, schemaDir: path.join(dir, 'schema', 'postgresql', 'v12') };
}

export interface ClusterOptions {
  portBase?: number;
  dbPrefix?: string;
  logFile?: string;
  /** Drop the Temporal databases first (a clean server for a test run). */
  fresh?: boolean;
}

export interface TemporalCluster {
  address: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

function dbEnv() {
  return {
    host: process.env.TEMPORAL_DB_HOST ?? '127.0.0.1',
    port: process.env.TEMPORAL_DB_PORT ?? '5432',
    user: process.env.TEMPORAL_DB_USER ?? 'postgres',
    password: process.env.TEMPORAL_DB_PASSWORD ?? '',
  };
}

/** Creates the two Temporal databases if missing and brings their schemas to this server version. */
async function setupSchemas(sqlTool: string, schemaDir: string, prefix: string, fresh: boolean): Promise<void> {
  const db = dbEnv();
  const admin = new pg.Client({
    host: db.host,
    port: Number(db.port),
    user: db.user,
    password: db.password,
    database: 'postgres',
  });
  await admin.connect();
  try {
    for (const [name, kind] of [
      [prefix, 'temporal'],
      [`${prefix}_visibility`, 'visibility'],
    ] as const) {
      if (fresh) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (found.rowCount === 0) await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
      const common = ['--plugin', 'postgres12', '--ep', db.host, '-p', db.port, '-u', db.user, '--db', name];
      if (db.password) common.push('--pw', db.password);
      const c = new pg.Client({
        host: db.host,
        port: Number(db.port),
        user: db.user,
        password: db.password,
        database: name,
      });
      await c.connect();
      const versioned = await c.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version'");
      await c.end();
      if (versioned.rowCount === 0) await run(sqlTool, [...common, 'setup-schema', '-v', '0.0']);
      await run(sqlTool, [...common, 'update-schema', '-d', path.join(schemaDir, kind, 'versioned')]);
    }
  } finally {
    await admin.end();
  }
}

/** Starts the SQL-backed Temporal server, waits for it, and runs the namespace/search-attribute setup. */
export async function startTemporalCluster(opts: ClusterOptions = {}): Promise<TemporalCluster> {
  const portBase = opts.portBase ?? Number(process.env.CLUSTER_PORT_BASE ?? 7233);
  // The server records its membership ports (base + 100…106) in a smallint column of PostgreSQL.
  if (!Number.isInteger(portBase) || portBase < 1024 || portBase + 106 > 32767) {
    throw new Error(
      `CLUSTER_PORT_BASE must be an integer from 1024 to 32661 (Temporal stores base + 106 as a smallint), got ${portBase}`,
    );
  }
  const prefix = opts.dbPrefix ?? process.env.CLUSTER_DB_PREFIX ?? 'opsflow_temporal';
  const [{ server, sqlTool, schemaDir }, cli] = await Promise.all([provisionTemporalServer(), provisionTemporalCli()]);
  await setupSchemas(sqlTool, schemaDir, prefix, opts.fresh ?? false);
  const db = dbEnv();
  const logFile = opts.logFile ?? path.join(projectRoot, '.data', 'cluster', 'temporal-server.log');
  await mkdir(path.dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(server, ['--root', projectRoot, '--config', 'temporal-config', '--env', 'postgres', 'start'], {
    cwd: projectRoot,
    env: {
      ...process.env,
      TEMPORAL_DB: prefix,
      TEMPORAL_VISIBILITY_DB: `${prefix}_visibility`,
      TEMPORAL_DB_HOST: db.host,
      TEMPORAL_DB_PORT: db.port,
      TEMPORAL_DB_USER: db.user,
      TEMPORAL_DB_PASSWORD: db.password,
      TEMPORAL_PORT_BASE: String(portBase),
      TEMPORAL_METRICS_PORT: String(portBase + 800),
      TEMPORAL_DYNAMIC_CONFIG: path.join(projectRoot, 'temporal-config', 'dynamicconfig.yaml'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = `127.0.0.1:${portBase}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    process.off('exit', killOnExit);
    log.end();
  };

  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`temporal-server exited with code ${child.exitCode}; see ${logFile}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      await connection.close();
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`temporal-server did not answer on ${address} within 120 s; see ${logFile}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    await run('sh', [path.join(projectRoot, 'temporal-config', 'setup.sh')], {
      env: { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_CLI: cli, TEMPORAL_NAMESPACE: 'default' },
      timeout: 300_000,
    });
  } catch (err) {
    await stop();
    throw new Error(`temporal-config/setup.sh failed: ${(err as Error).message}`);
  }
  return { address, process: child, stop };
}

async function main() {
  const config = loadConfigOrExit();
  await ensureDatabase(config.databaseUrl);
  const cluster = await startTemporalCluster();
  say(`Temporal (PostgreSQL persistence) on ${cluster.address}`);
  const env = { ...process.env, TEMPORAL_ADDRESS: cluster.address };
  // The built code (npm run cluster builds first): workers load the pre-bundled workflows.
  const entry = (file: string, name: string) => {
    const child = spawn(process.execPath, [path.join(projectRoot, 'dist', file)], { env, stdio: 'inherit' });
    child.once('exit', (code, signal) => say(`${name} exited (${code ?? signal})`));
    return child;
  };
  const children = [
    entry('worker/main.js', 'worker 1'),
    entry('worker/main.js', 'worker 2'),
    entry('api/server.js', 'api'),
  ];
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping: API and workers first, then the server');
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    await cluster.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
