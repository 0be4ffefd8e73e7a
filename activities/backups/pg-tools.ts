/**
 * What the backup and restore activities share: their error types, the PostgreSQL client tools (run with
 * the password in PGPASSWORD, killed when the activity is cancelled), row counts and scratch names.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import type { Config } from '../../lib/config.js';
import { quoteIdent } from '../../lib/db.js';
import type { VerificationResult } from '../../lib/backups/contract.js';

export const BackupErrorType = {
  UnknownDatabase: 'UnknownDatabase',
  ClientTooOld: 'ClientTooOld',
  DumpFailed: 'DumpFailed',
  StoreFailed: 'StoreFailed',
  NotRestorable: 'NotRestorable',
  BadTarget: 'BadTarget',
  RestoreFailed: 'RestoreFailed',
  /** Another backup of the same database is dumping: one at a time, like pgBackRest's stanza lock. */
  AlreadyRunning: 'AlreadyRunning',
} as const;
export const expectedTables = (counts: Record<string, number>): VerificationResult['tables'] =>
  Object.entries(counts)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([table, expected]) => ({ table, expected, restored: null }));

/**
 * A database name derived from a run id: valid, at most 63 bytes, readable (the prefix and as much of the id as
 * fits) and unique per run id — a digest of the whole id ends it, so ids that share their first 50 characters
 * (a long database name in them) no longer share a scratch database.
 */
export function scratchName(prefix: string, runId: string): string {
  const digest = createHash('sha256').update(runId).digest('hex').slice(0, 10);
  const readable = runId.replace(/[^a-zA-Z0-9]/g, '_').toLowerCase();
  return `${prefix}${readable.slice(0, 63 - prefix.length - digest.length - 1)}_${digest}`;
}

export function verificationTable(v: VerificationResult | undefined): string {
  const rows = (v?.tables ?? []).map(
    (t) => `  ${t.table.padEnd(40)} ${String(t.expected).padStart(10)} ${String(t.restored ?? '—').padStart(10)}`,
  );
  const owners = v?.ownersNotKept?.length
    ? [`  owners not kept (the restoring role may not make them owners): ${v.ownersNotKept.join(', ')}`]
    : [];
  return ['  table, rows in snapshot, rows restored:', ...(rows.length ? rows : ['  (none)']), ...owners].join('\n');
}

export const execFileAsync = promisify(execFile);

export const fail = (type: string, message: string, nonRetryable = true) =>
  ApplicationFailure.create({ type, message, nonRetryable });
export function bin(config: Config, name: string): string {
  return config.backups.pgBinDir ? path.join(config.backups.pgBinDir, name) : name;
}

/**
 * A connection URL as a PostgreSQL client tool's arguments: the URL without its password — in the user part or as
 * libpq's `?password=` parameter, which wins as it does in libpq — and the password in PGPASSWORD, so `ps` (which
 * shows argv to every user of the machine) never shows it.
 */
export function pgConnection(url: string): { arg: string; env: Record<string, string> } {
  const u = new URL(url);
  const password = u.searchParams.get('password') ?? decodeURIComponent(u.password);
  u.password = '';
  u.searchParams.delete('password');
  return { arg: `--dbname=${u.toString()}`, env: password ? { PGPASSWORD: password } : {} };
}

/** Runs a PostgreSQL client tool, killing it if the activity is cancelled. */
export function run(
  command: string,
  args: string[],
  opts: { stdin?: Readable; env?: Record<string, string> } = {},
): { child: ChildProcess; done: Promise<string> } {
  const { stdin } = opts;
  const child = spawn(command, args, {
    stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  if (stdin && child.stdin) stdin.pipe(child.stdin).on('error', () => undefined);
  const done = new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) =>
      code === 0
        ? resolve(stderr)
        : reject(new Error(`${path.basename(command)} exited ${code ?? signal}: ${stderr.trim()}`)),
    );
  });
  return { child, done };
}

/**
 * What an archive holds, from its table of contents (`pg_restore --list`; the file only, no server): the roles it
 * makes owners of its objects (each entry's last field) and its tables (`schema.name`). Throws when pg_restore
 * cannot read it as an archive.
 */
export async function archiveContents(config: Config, file: string): Promise<{ owners: string[]; tables: string[] }> {
  const { stdout } = await execFileAsync(bin(config, 'pg_restore'), ['--list', file], { maxBuffer: 64 * 1024 * 1024 });
  const owners = new Set<string>();
  const tables: string[] = [];
  for (const line of stdout.split('\n')) {
    if (!/^\d+;/.test(line)) continue;
    const fields = line.trim().split(/\s+/);
    const owner = fields.at(-1);
    if (owner && owner !== '-') owners.add(owner);
    // `215; 1259 16386 TABLE public orders app`: the name may hold spaces, so it is what lies between.
    const table = /^\d+; \d+ \d+ TABLE (?!DATA )(\S+) (.+) (\S+)$/.exec(line.trim());
    if (table) tables.push(`${table[1]}.${table[2]}`);
  }
  return { owners: [...owners].sort(), tables };
}

/** Of `roles`, those the connected role cannot make owners (not a superuser, not a member; or no such role). */
export async function rolesNotSettable(client: pg.ClientBase, roles: string[]): Promise<string[]> {
  const { rows } = await client.query<{ role: string }>(
    `SELECT r AS role FROM unnest($1::text[]) r
      WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r AND pg_has_role(current_user, oid, 'MEMBER'))
      ORDER BY 1`,
    [roles],
  );
  return rows.map((r) => r.role);
}

export function onCancel(kill: () => void): () => void {
  const signal = Context.current().cancellationSignal;
  const handler = () => kill();
  signal.addEventListener('abort', handler);
  return () => signal.removeEventListener('abort', handler);
}

export async function countRows(client: pg.ClientBase): Promise<Record<string, number>> {
  const { rows } = await client.query<{ nspname: string; relname: string }>(
    `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
     ORDER BY 1, 2`,
  );
  const counts: Record<string, number> = {};
  for (const r of rows) {
    const { rows: c } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${quoteIdent(r.nspname)}.${quoteIdent(r.relname)}`,
    );
    counts[`${r.nspname}.${r.relname}`] = Number(c[0]!.n);
  }
  return counts;
}

export const majorOf = (versionNum: number) => Math.floor(versionNum / 10000);
