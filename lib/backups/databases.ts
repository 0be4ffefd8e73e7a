/**
 * Which PostgreSQL server a backup, a verification or a restore talks to, and what state a target database
 * is in. Shared by the API (to refuse a bad restore before anything starts) and the activities (which check
 * again, because the database may change in between).
 */
import { lookup } from 'node:dns/promises';
import pg from 'pg';
import type { Config } from '../config.js';

/** A database name opsflow will create, drop or restore into: a plain identifier, nothing to quote wrongly. */
export const DATABASE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Where a database lives: the verification server, the server of a configured (backed-up) database, or a
 * RESTORE_SERVERS entry (another server a restore may target: disaster recovery).
 */
export type Server = 'verify' | { database: string } | { restoreServer: string };

export class UnknownDatabaseError extends Error {}
export class UnknownServerError extends Error {}

/** The maintenance URL of a RESTORE_SERVERS entry. */
export function restoreServerUrl(config: Config, name: string): string {
  const server = config.backups.restoreServers.find((s) => s.name === name);
  if (!server) {
    const known = config.backups.restoreServers.map((s) => s.name);
    throw new UnknownServerError(
      `server ${name} is not in RESTORE_SERVERS${known.length ? ` (${known.join(', ')})` : ' (none is set)'}`,
    );
  }
  return server.url;
}

/** The server a restore of `source` writes to: its own, or the named RESTORE_SERVERS entry. */
export const restoreServerOf = (source: string, server: string | undefined): Server =>
  server ? { restoreServer: server } : { database: source };

const serverUrl = (config: Config, server: Server) =>
  server === 'verify'
    ? config.backups.verifyUrl
    : 'restoreServer' in server
      ? restoreServerUrl(config, server.restoreServer)
      : sourceUrl(config, server.database);

export function sourceUrl(config: Config, database: string): string {
  const db = config.backups.databases.find((d) => d.name === database);
  if (!db) throw new UnknownDatabaseError(`database ${database} is not in BACKUP_DATABASE_URLS`);
  return db.url;
}

/** The URL of database `name` on `server` (credentials and options kept). */
export function databaseUrlOn(config: Config, server: Server, name: string): string {
  const url = new URL(serverUrl(config, server));
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

/** The maintenance database of `server` (`postgres`), for CREATE / DROP / RENAME DATABASE. */
export const maintenanceUrl = (config: Config, server: Server) => databaseUrlOn(config, server, 'postgres');

/** True when `name` on `server` is the database opsflow keeps its own state in. */
export async function isOpsflowDatabase(config: Config, server: Server, name: string): Promise<boolean> {
  const own = new URL(config.databaseUrl);
  const target = new URL(databaseUrlOn(config, server, name));
  if (decodeURIComponent(own.pathname) !== decodeURIComponent(target.pathname)) return false;
  if ((own.port || '5432') !== (target.port || '5432')) return false;
  if (sameHostName(own, target)) return true;
  // `localhost` and `127.0.0.1` (or a DNS name and its address) are one server: compare what they resolve to.
  const [a, b] = await Promise.all([addressesOf(own), addressesOf(target)]);
  return a.some((x) => b.includes(x));
}

const socketOf = (u: URL) => u.searchParams.get('host') ?? '';
const sameHostName = (a: URL, b: URL) =>
  a.hostname.toLowerCase() === b.hostname.toLowerCase() && socketOf(a) === socketOf(b);

async function addressesOf(u: URL): Promise<string[]> {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!host) return [`socket:${socketOf(u)}`];
  try {
    const all = await lookup(host, { all: true });
    // Every loopback address is this machine.
    return all.map((r) => (r.address === '::1' || r.address.startsWith('127.') ? 'loopback' : r.address));
  } catch {
    return [host.toLowerCase()];
  }
}

/**
 * Databases no restore ever writes to, whatever RESTORE_TARGETS says: the server's own (`postgres`, the
 * templates) and Temporal's persistence (the names compose and `npm run cluster` give them). opsflow's own
 * database is refused too, by its URL (isOpsflowDatabase).
 */
export const NEVER_RESTORED: readonly string[] = [
  'postgres',
  'template0',
  'template1',
  'temporal',
  'temporal_visibility',
];

/** What a restore of `source` may target: its RESTORE_TARGETS entry, else the source itself and `<source>_restore_*`. */
export const restoreTargetPatterns = (config: Config, source: string): string[] =>
  config.backups.restoreTargets[source] ?? [source, `${source}_restore_*`];

/** A RESTORE_TARGETS pattern (a database name, `*` standing for any run of name characters) as a RegExp. */
export const targetPattern = (pattern: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[^A-Za-z0-9_]/g, ''))
      .join('[A-Za-z0-9_]*')}$`,
  );

/**
 * Why `target` (on `server`, by default the source's own) may not receive a restore of `source`, or undefined when
 * it may: a bad name, a database no restore ever writes to, opsflow's own, or a name outside the source's
 * allow-list (the same list on every server).
 */
export async function restoreTargetRefusal(
  config: Config,
  source: string,
  target: string,
  server: Server = { database: source },
): Promise<string | undefined> {
  if (!DATABASE_NAME.test(target)) return `invalid database name ${target}`;
  if (NEVER_RESTORED.includes(target)) {
    return `${target} is never a restore target (the server's own and Temporal's databases are refused, whatever RESTORE_TARGETS says)`;
  }
  if (await isOpsflowDatabase(config, server, target)) {
    return `${target} holds opsflow's own state; restore it elsewhere`;
  }
  const patterns = restoreTargetPatterns(config, source);
  if (!patterns.some((p) => targetPattern(p).test(target))) {
    return `${target} is not a restore target of ${source}: RESTORE_TARGETS allows ${patterns.join(', ')}`;
  }
  return undefined;
}

export type TargetState = 'missing' | 'empty' | 'non-empty';

/** Whether `name` exists on `server` and holds any table, view, sequence or function of its own. */
export async function targetState(config: Config, server: Server, name: string): Promise<TargetState> {
  const admin = new pg.Client({ connectionString: maintenanceUrl(config, server) });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) return 'missing';
  } finally {
    await admin.end();
  }
  const target = new pg.Client({ connectionString: databaseUrlOn(config, server, name) });
  await target.connect();
  try {
    const { rows } = await target.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%')
            + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')) AS n`,
    );
    return Number(rows[0]!.n) > 0 ? 'non-empty' : 'empty';
  } finally {
    await target.end();
  }
}
