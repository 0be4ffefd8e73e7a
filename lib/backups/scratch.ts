/**
 * Scratch databases — a verification's or a drill's restore, a restore's staging copy — carry a mark (a
 * database comment with the run and the time it was made) from the moment opsflow creates them until it drops
 * or promotes them. A run killed in between (a terminated workflow, a worker gone for good) leaves one behind;
 * the daily janitor drops what it can prove is such a leftover: marked by opsflow, older than a day, nobody
 * connected. Nothing unmarked is ever dropped: a database named like a scratch one from before the mark is
 * only marked ("first seen now") and dropped a day later if it is still unused.
 */
import pg from 'pg';
import type { Config } from '../config.js';
import { quoteIdent } from '../db.js';
import { isOpsflowDatabase, maintenanceUrl, type Server } from './databases.js';

const MARK = 'opsflow-scratch ';
/** Names only opsflow's verifications and drills use; from versions that did not mark them. */
const LEGACY_SCRATCH = /^opsflow_(verify|drill)_/;

export interface ScratchMark {
  kind: 'verify' | 'drill' | 'restore-staging' | 'first-seen';
  /** The run that made it (a workflow run id, or the catalogue id). */
  run: string;
  createdAt: string;
}

/** Marks `dbName` as a scratch database of `mark.run` (on the admin connection that created it). */
export async function markScratch(admin: pg.ClientBase, dbName: string, mark: Omit<ScratchMark, 'createdAt'>) {
  const text = MARK + JSON.stringify({ ...mark, createdAt: new Date().toISOString() } satisfies ScratchMark);
  await admin.query(`COMMENT ON DATABASE ${quoteIdent(dbName)} IS ${pg.escapeLiteral(text)}`);
}

/** Clears the mark: the database is no longer scratch (a restore's staging copy becomes the target). */
export async function unmarkScratch(admin: pg.ClientBase, dbName: string) {
  await admin.query(`COMMENT ON DATABASE ${quoteIdent(dbName)} IS NULL`);
}

export function parseMark(comment: string | null): ScratchMark | undefined {
  if (!comment?.startsWith(MARK)) return undefined;
  try {
    const m = JSON.parse(comment.slice(MARK.length)) as ScratchMark;
    return Number.isFinite(Date.parse(m.createdAt)) ? m : undefined;
  } catch {
    return undefined;
  }
}

export interface ScratchSweep {
  server: string;
  dropped: string[];
  /** Unmarked databases with a scratch name, marked now: dropped on a later sweep if still unused. */
  marked: string[];
  kept: { name: string; reason: string }[];
}

/**
 * Servers opsflow makes scratch databases on: the verification server, each backed-up database's, and each
 * RESTORE_SERVERS entry (a DR drill's scratch copy, a DR restore's staging copy).
 */
export function scratchServers(config: Config): { label: string; server: Server }[] {
  const seen = new Map<string, { label: string; server: Server }>();
  const add = (server: Server) => {
    const url = new URL(maintenanceUrl(config, server));
    const label = `${url.hostname}:${url.port || '5432'}`;
    if (!seen.has(url.toString())) seen.set(url.toString(), { label, server });
  };
  add('verify');
  for (const db of config.backups.databases) add({ database: db.name });
  for (const s of config.backups.restoreServers) add({ restoreServer: s.name });
  return [...seen.values()];
}

/** Drops the provable leftovers on one server (see the module comment). */
export async function sweepScratch(
  config: Config,
  target: { label: string; server: Server },
  olderThanMs: number,
  now = Date.now(),
): Promise<ScratchSweep> {
  const result: ScratchSweep = { server: target.label, dropped: [], marked: [], kept: [] };
  const admin = new pg.Client({ connectionString: maintenanceUrl(config, target.server) });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ name: string; comment: string | null; connections: number }>(
      `SELECT d.datname AS name, shobj_description(d.oid, 'pg_database') AS comment,
              (SELECT count(*)::int FROM pg_stat_activity a WHERE a.datid = d.oid) AS connections
         FROM pg_database d WHERE NOT d.datistemplate ORDER BY d.datname`,
    );
    for (const row of rows) {
      const mark = parseMark(row.comment);
      if (!mark) {
        if (LEGACY_SCRATCH.test(row.name) && row.comment === null) {
          await markScratch(admin, row.name, { kind: 'first-seen', run: 'unknown' });
          result.marked.push(row.name);
        }
        continue;
      }
      const age = now - Date.parse(mark.createdAt);
      if (age < olderThanMs) {
        result.kept.push({ name: row.name, reason: `made ${Math.round(age / 60_000)} min ago by ${mark.run}` });
      } else if (row.connections > 0) {
        result.kept.push({ name: row.name, reason: `${row.connections} connection(s) open` });
      } else if (await isOpsflowDatabase(config, target.server, row.name)) {
        result.kept.push({ name: row.name, reason: "opsflow's own database" });
      } else {
        // No FORCE: a connection opened since the check makes the drop fail, and the database stays.
        try {
          await admin.query(`DROP DATABASE ${quoteIdent(row.name)}`);
          result.dropped.push(row.name);
        } catch (err) {
          result.kept.push({ name: row.name, reason: `drop refused: ${(err as Error).message}` });
        }
      }
    }
  } finally {
    await admin.end();
  }
  return result;
}
