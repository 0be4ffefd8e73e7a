/**
 * A second PostgreSQL server on this machine — another cluster of the installed version, made with Debian's
 * pg_createcluster on its own port, trusting local TCP connections — as a disaster-recovery server that shares
 * nothing (no roles, no databases) with the test run's own. Made fresh for a test file and dropped after it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const asRoot = (cmd: string, args: string[]) =>
  process.getuid?.() === 0 ? run(cmd, args) : run('sudo', ['-n', cmd, ...args]);

export interface SecondCluster {
  /** Its maintenance database, as the superuser `postgres`. */
  url: string;
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<R[]>;
  drop(): Promise<void>;
}

async function versionInstalled(): Promise<string> {
  const { stdout } = await run('pg_lsclusters', ['--no-header']);
  const version = stdout.trim().split('\n')[0]?.split(/\s+/)[0];
  if (!version) throw new Error('pg_lsclusters lists no cluster: install Debian postgresql (pg_createcluster)');
  return version;
}

export async function startSecondCluster(name: string, port: number): Promise<SecondCluster> {
  const version = await versionInstalled();
  // A previous run killed before its cleanup leaves its cluster: start from nothing.
  await asRoot('pg_dropcluster', ['--stop', version, name]).catch(() => undefined);
  await asRoot('pg_createcluster', [
    version,
    name,
    '--port',
    String(port),
    '--start',
    '--',
    '--auth-local=trust',
    '--auth-host=trust',
  ]);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = [], database = 'postgres') => {
    const u = new URL(url);
    u.pathname = `/${database}`;
    const c = new pg.Client({ connectionString: u.toString() });
    await c.connect();
    try {
      return (await c.query<R>(sql, params)).rows;
    } finally {
      await c.end();
    }
  };
  for (let i = 0; ; i++) {
    try {
      await query('SELECT 1');
      break;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    url,
    query,
    drop: async () => {
      await asRoot('pg_dropcluster', ['--stop', version, name]);
    },
  };
}
