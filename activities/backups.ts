/**
 * Backup activities: dump (snapshot, row counts, pg_dump streamed to every store at once with sha256),
 * verify (re-read every copy, pg_restore into a scratch database, compare counts), catalog, retention
 * and the report. Long steps heartbeat and kill their child process when cancelled.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import type { Config } from '../lib/config.js';
import { quoteIdent, type Pool } from '../lib/db.js';
import type { Logger } from '../lib/logger.js';
import type { Mailer } from '../lib/mailer.js';
import {
  DATABASE_NAME,
  databaseUrlOn,
  isOpsflowDatabase,
  maintenanceUrl,
  targetState,
  type Server,
  type TargetState,
} from '../lib/backups/databases.js';
import { configuredStores, type BlobStore, type PendingWrite } from '../lib/backups/stores.js';
import type {
  BackupResult,
  DumpResult,
  FreshnessResult,
  RestoreResult,
  StoredCopy,
  StoreName,
  VerificationResult,
} from '../workflows/backups/definitions.js';
import { planRetention } from '../workflows/backups/retention.js';

export const BackupErrorType = {
  UnknownDatabase: 'UnknownDatabase',
  ClientTooOld: 'ClientTooOld',
  DumpFailed: 'DumpFailed',
  StoreFailed: 'StoreFailed',
  NotRestorable: 'NotRestorable',
  BadTarget: 'BadTarget',
  RestoreFailed: 'RestoreFailed',
} as const;

/** A verified backup that can be restored, with the copies retention has not removed. */
export interface RestorableBackup {
  backupId: string;
  database: string;
  sha256: string;
  sizeBytes: number;
  locations: StoredCopy[];
  tableCounts: Record<string, number>;
}

const expectedTables = (counts: Record<string, number>): VerificationResult['tables'] =>
  Object.entries(counts)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([table, expected]) => ({ table, expected, restored: null }));

/** A database name derived from a run id, valid and at most 63 bytes. */
export const scratchName = (prefix: string, runId: string) =>
  `${prefix}${runId.replace(/[^a-zA-Z0-9]/g, '_').toLowerCase()}`.slice(0, 63);

function verificationTable(v: VerificationResult | undefined): string {
  const rows = (v?.tables ?? []).map(
    (t) => `  ${t.table.padEnd(40)} ${String(t.expected).padStart(10)} ${String(t.restored ?? '—').padStart(10)}`,
  );
  return ['  table, rows in snapshot, rows restored:', ...(rows.length ? rows : ['  (none)'])].join('\n');
}

const execFileAsync = promisify(execFile);

const fail = (type: string, message: string, nonRetryable = true) =>
  ApplicationFailure.create({ type, message, nonRetryable });

interface Deps {
  config: Config;
  pool: Pool;
  mailer: Mailer;
  log: Logger;
  stores?: BlobStore[];
}

function bin(config: Config, name: string): string {
  return config.backups.pgBinDir ? path.join(config.backups.pgBinDir, name) : name;
}

/**
 * A connection URL as a PostgreSQL client tool's arguments: the URL without its password, and the password
 * in PGPASSWORD, so `ps` (which shows argv to every user of the machine) never shows it.
 */
export function pgConnection(url: string): { arg: string; env: Record<string, string> } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = '';
  return { arg: `--dbname=${u.toString()}`, env: password ? { PGPASSWORD: password } : {} };
}

/** Runs a PostgreSQL client tool, killing it if the activity is cancelled. */
function run(
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

function onCancel(kill: () => void): () => void {
  const signal = Context.current().cancellationSignal;
  const handler = () => kill();
  signal.addEventListener('abort', handler);
  return () => signal.removeEventListener('abort', handler);
}

async function countRows(client: pg.ClientBase): Promise<Record<string, number>> {
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

const majorOf = (versionNum: number) => Math.floor(versionNum / 10000);

export const createBackupActivities = (deps: Deps) => {
  const stores = deps.stores ?? configuredStores(deps.config);
  const storeByName = (name: StoreName) => {
    const s = stores.find((x) => x.name === name);
    if (!s) throw fail(BackupErrorType.StoreFailed, `store ${name} is not configured`);
    return s;
  };
  const databaseUrl = (name: string) => {
    const db = deps.config.backups.databases.find((d) => d.name === name);
    if (!db) throw fail(BackupErrorType.UnknownDatabase, `database ${name} is not in BACKUP_DATABASE_URLS`);
    return db.url;
  };

  /**
   * Copies a stored backup into a private temporary file (under OPSFLOW_DATA_DIR/tmp, mode 0600) while hashing
   * it. The file is handed back only when its size and sha256 match the catalogue; otherwise it is removed
   * and the reason returned. The caller removes `dir` when done.
   */
  async function verifiedCopy(
    location: StoredCopy,
    sha256: string,
    sizeBytes: number,
  ): Promise<{ ok: true; file: string; dir: string } | { ok: false; reason: string }> {
    const root = path.resolve(deps.config.dataDir, 'tmp');
    await mkdir(root, { recursive: true, mode: 0o700 });
    const dir = await mkdtemp(path.join(root, 'restore-'));
    const file = path.join(dir, 'backup.dump');
    const hash = createHash('sha256');
    let size = 0;
    const beat = setInterval(() => Context.current().heartbeat({ step: 'fetch', bytes: size }), 1000);
    try {
      const source = await storeByName(location.store).read(location.key);
      const tap = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      await pipeline(source, tap, createWriteStream(file, { mode: 0o600 }));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      return { ok: false, reason: `${location.store} copy unreadable: ${(err as Error).message}` };
    } finally {
      clearInterval(beat);
    }
    if (size !== sizeBytes || hash.digest('hex') !== sha256) {
      await rm(dir, { recursive: true, force: true });
      return {
        ok: false,
        reason: `${location.store} copy differs from the catalog (size ${size}/${sizeBytes}, sha256 mismatch); nothing was restored from it`,
      };
    }
    return { ok: true, file, dir };
  }

  /**
   * Restores one stored copy into database `dbName` on `server` (created fresh; an existing one of that name
   * is dropped first: callers pass names opsflow owns) from a local copy whose sha256 and size were checked
   * first, then compares row counts with `expected`. On any failure the database is dropped; on success it is
   * dropped too unless `keep`. Never throws for a bad copy: the result says why.
   */
  async function restoreAndCompare(input: {
    server: Server;
    dbName: string;
    location: StoredCopy;
    sha256: string;
    sizeBytes: number;
    expected: Record<string, number>;
    keep: boolean;
    /** Keep owners and grants (a real restore on the source's server); scratch restores drop them. */
    preserveOwnership?: boolean;
  }): Promise<VerificationResult> {
    const tables = expectedTables(input.expected);
    // Nothing reaches pg_restore before its bytes match the catalogue, and what it reads is the very file
    // that was hashed: a tampered copy never runs a statement.
    const copy = await verifiedCopy(input.location, input.sha256, input.sizeBytes);
    if (!copy.ok) return { ok: false, reason: copy.reason, tables };
    const admin = new pg.Client({ connectionString: maintenanceUrl(deps.config, input.server) });
    await admin.connect();
    const url = databaseUrlOn(deps.config, input.server, input.dbName);
    let ok = false;
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(input.dbName)} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${quoteIdent(input.dbName)}`);
      const ownership = input.preserveOwnership ? [] : ['--no-owner', '--no-privileges'];
      const conn = pgConnection(url);
      const restore = run(bin(deps.config, 'pg_restore'), [...ownership, '--exit-on-error', conn.arg, copy.file], {
        env: conn.env,
      });
      const stopCancel = onCancel(() => restore.child.kill('SIGKILL'));
      const beat = setInterval(() => Context.current().heartbeat({ step: 'restore' }), 1000);
      try {
        await restore.done;
      } catch (err) {
        return { ok: false, reason: `restore failed: ${(err as Error).message}`, tables };
      } finally {
        clearInterval(beat);
        stopCancel();
      }
      const restored = new pg.Client({ connectionString: url });
      await restored.connect();
      let counts: Record<string, number>;
      try {
        counts = await countRows(restored);
      } finally {
        await restored.end();
      }
      for (const t of tables) t.restored = counts[t.table] ?? null;
      const bad = tables.filter((t) => t.restored !== t.expected);
      const extra = Object.keys(counts).filter((k) => !(k in input.expected));
      if (bad.length > 0 || extra.length > 0) {
        const diffs = [
          ...bad.map((t) => `${t.table} ${t.restored ?? 'missing'}/${t.expected}`),
          ...extra.map((e) => `${e} unexpected`),
        ];
        return { ok: false, reason: `row counts differ: ${diffs.join(', ')}`, tables };
      }
      ok = true;
      return { ok: true, tables };
    } finally {
      if (!ok || !input.keep) {
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(input.dbName)} WITH (FORCE)`).catch(() => undefined);
      }
      await admin.end();
      await rm(copy.dir, { recursive: true, force: true });
    }
  }

  return {
    /** Snapshot + counts, then pg_dump of that snapshot streamed into every store while hashing. */
    async dumpToStores(input: { runId: string; database: string; key: string }): Promise<DumpResult> {
      const url = databaseUrl(input.database);
      const source = new pg.Client({ connectionString: url });
      await source.connect();
      const writes: { store: BlobStore; write: PendingWrite }[] = [];
      try {
        // Bounded: this runs before the heartbeats start, so a hung binary must not hang the step.
        const { stdout } = await execFileAsync(bin(deps.config, 'pg_dump'), ['--version'], {
          timeout: 30_000,
        }).catch((err: Error) => {
          throw fail(BackupErrorType.DumpFailed, `pg_dump not usable: ${err.message}`);
        });
        const clientMajor = Number(/(\d+)(?:\.\d+)?/.exec(stdout)?.[1] ?? 0);
        const server = await source.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
        const serverMajor = majorOf(Number(server.rows[0]!.v));
        if (!clientMajor || !Number.isFinite(serverMajor)) {
          throw fail(
            BackupErrorType.DumpFailed,
            `cannot compare pg_dump's version (${stdout.trim() || 'no output'}) with the server's`,
          );
        }
        if (clientMajor < serverMajor) {
          throw fail(
            BackupErrorType.ClientTooOld,
            `pg_dump ${clientMajor} is older than the server (${serverMajor}): install PostgreSQL ${serverMajor} client tools or set PG_BIN_DIR`,
          );
        }

        await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const snapshot = (await source.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
        const tableCounts = await countRows(source);

        for (const store of stores) writes.push({ store, write: store.write(input.key) });
        const conn = pgConnection(url);
        const dump = run(bin(deps.config, 'pg_dump'), ['--format=custom', `--snapshot=${snapshot}`, conn.arg], {
          env: conn.env,
        });
        const stopCancel = onCancel(() => dump.child.kill('SIGKILL'));
        const hash = createHash('sha256');
        let size = 0;
        const beat = setInterval(() => Context.current().heartbeat({ bytes: size }), 1000);
        try {
          const out = dump.child.stdout!;
          // Fan out with backpressure: the slowest store sets the pace, memory stays flat.
          out.on('data', (chunk: Buffer) => {
            hash.update(chunk);
            size += chunk.length;
            let paused = false;
            for (const { write } of writes) {
              if (!write.sink.write(chunk)) {
                if (!paused) out.pause();
                paused = true;
                write.sink.once('drain', () => {
                  if (writes.every((w) => !w.write.sink.writableNeedDrain)) out.resume();
                });
              }
            }
          });
          await dump.done;
          for (const { write } of writes) write.sink.end();
          for (const { store, write } of writes) {
            await write.commit().catch((err: Error) => {
              throw fail(BackupErrorType.StoreFailed, `store ${store.name}: ${err.message}`, false);
            });
          }
        } finally {
          clearInterval(beat);
          stopCancel();
        }
        await source.query('COMMIT');
        return {
          sizeBytes: size,
          sha256: hash.digest('hex'),
          locations: writes.map(({ store }) => ({ store: store.name, key: input.key })),
          tableCounts,
        };
      } catch (err) {
        await Promise.all(writes.map(({ write }) => write.abort()));
        if (err instanceof ApplicationFailure) throw err;
        throw fail(BackupErrorType.DumpFailed, (err as Error).message, false);
      } finally {
        await source.end().catch(() => undefined);
      }
    },

    /**
     * Re-reads every stored copy (sha256 and size must match): the first into a local file that, once it
     * matches, is restored into a scratch database on the verification server (row counts compared with the
     * snapshot's); the others are hashed as they stream.
     * Never throws for a bad backup: the result says why it is not verified. The scratch database is dropped
     * whatever happens.
     */
    async verifyBackup(input: {
      runId: string;
      locations: StoredCopy[];
      sha256: string;
      sizeBytes: number;
      tableCounts: Record<string, number>;
    }): Promise<VerificationResult> {
      const tables = expectedTables(input.tableCounts);
      const [first, ...others] = input.locations;
      if (!first) return { ok: false, reason: 'no stored copy', tables };
      for (const loc of others) {
        const hash = createHash('sha256');
        let size = 0;
        try {
          for await (const chunk of await storeByName(loc.store).read(loc.key)) {
            hash.update(chunk as Buffer);
            size += (chunk as Buffer).length;
          }
        } catch (err) {
          return { ok: false, reason: `${loc.store} copy unreadable: ${(err as Error).message}`, tables };
        }
        const digest = hash.digest('hex');
        if (size !== input.sizeBytes || digest !== input.sha256) {
          return {
            ok: false,
            reason: `${loc.store} copy differs from what was written (size ${size}/${input.sizeBytes}, sha256 mismatch)`,
            tables,
          };
        }
        Context.current().heartbeat({ verified: loc.store });
      }
      return restoreAndCompare({
        server: 'verify',
        dbName: scratchName('opsflow_verify_', input.runId),
        location: first,
        sha256: input.sha256,
        sizeBytes: input.sizeBytes,
        expected: input.tableCounts,
        keep: false,
      });
    },

    restoreAndCompare,

    /** The catalog row a restore starts from; refuses (non-retryable) what cannot be restored. */
    async loadBackup(input: { backupId: string }): Promise<RestorableBackup> {
      const { rows } = await deps.pool.query<{
        database: string;
        status: string;
        sha256: string | null;
        size_bytes: string | null;
        locations: StoredCopy[];
        table_counts: Record<string, number> | null;
        deleted_from: string[];
      }>(
        'SELECT database, status, sha256, size_bytes, locations, table_counts, deleted_from FROM opsflow.backups WHERE id = $1',
        [input.backupId],
      );
      const row = rows[0];
      if (!row) throw fail(BackupErrorType.NotRestorable, `backup ${input.backupId} not found`);
      if (row.status !== 'verified') {
        throw fail(
          BackupErrorType.NotRestorable,
          `backup ${input.backupId} is ${row.status}, only verified backups are restored`,
        );
      }
      const locations = row.locations.filter((l) => !row.deleted_from.includes(l.store));
      if (locations.length === 0) {
        throw fail(BackupErrorType.NotRestorable, `backup ${input.backupId} was removed from every store by retention`);
      }
      return {
        backupId: input.backupId,
        database: row.database,
        sha256: row.sha256!,
        sizeBytes: Number(row.size_bytes),
        locations,
        tableCounts: row.table_counts ?? {},
      };
    },

    /**
     * The newest verified backup of a database still held by the remote store (S3 when configured, else the
     * local directory) — what a disaster recovery would restore from — with that copy only.
     */
    async newestVerifiedBackup(input: { database: string }): Promise<RestorableBackup | null> {
      const remote: StoreName = stores.some((s) => s.name === 's3') ? 's3' : 'local';
      const { rows } = await deps.pool.query<{
        id: string;
        sha256: string;
        size_bytes: string;
        locations: StoredCopy[];
        table_counts: Record<string, number>;
      }>(
        `SELECT id, sha256, size_bytes, locations, table_counts FROM opsflow.backups
         WHERE database = $1 AND status = 'verified' AND locations @> $2::jsonb AND NOT ($3 = ANY (deleted_from))
         ORDER BY started_at DESC, id DESC LIMIT 1`,
        [input.database, JSON.stringify([{ store: remote }]), remote],
      );
      const r = rows[0];
      if (!r) return null;
      return {
        backupId: r.id,
        database: input.database,
        sha256: r.sha256,
        sizeBytes: Number(r.size_bytes),
        locations: r.locations.filter((l) => l.store === remote),
        tableCounts: r.table_counts,
      };
    },

    /**
     * Checks a restore target before anything is written: never opsflow's own database; a non-empty one
     * only with `overwrite`.
     */
    async checkRestoreTarget(input: { database: string; target: string; overwrite: boolean }): Promise<TargetState> {
      const server = { database: input.database };
      if (!DATABASE_NAME.test(input.target))
        throw fail(BackupErrorType.BadTarget, `invalid database name ${input.target}`);
      if (isOpsflowDatabase(deps.config, server, input.target)) {
        throw fail(BackupErrorType.BadTarget, `${input.target} holds opsflow's own state; restore it elsewhere`);
      }
      const state = await targetState(deps.config, server, input.target);
      if (state === 'non-empty' && !input.overwrite) {
        throw fail(
          BackupErrorType.BadTarget,
          `database ${input.target} is not empty; pass overwrite: true to replace it`,
        );
      }
      return state;
    },

    /**
     * Puts a verified restore in place: drops the old target (if any) and renames the restored database to
     * its name. Idempotent: when the restored database is already gone and the target exists, it was done.
     */
    async promoteRestoredDatabase(input: { database: string; from: string; to: string }): Promise<void> {
      const admin = new pg.Client({ connectionString: maintenanceUrl(deps.config, { database: input.database }) });
      await admin.connect();
      try {
        const { rows } = await admin.query<{ datname: string }>(
          'SELECT datname FROM pg_database WHERE datname = ANY ($1)',
          [[input.from, input.to]],
        );
        const names = rows.map((r) => r.datname);
        if (!names.includes(input.from)) {
          if (names.includes(input.to)) return;
          throw fail(BackupErrorType.RestoreFailed, `restored database ${input.from} disappeared before promotion`);
        }
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(input.to)} WITH (FORCE)`);
        await admin.query(`ALTER DATABASE ${quoteIdent(input.from)} RENAME TO ${quoteIdent(input.to)}`);
      } finally {
        await admin.end();
      }
    },

    /** Upserts a restore / drill catalog row (keyed by id). */
    async recordRestore(input: RestoreResult & { startedAt: string; running?: boolean }): Promise<void> {
      await deps.pool.query(
        `INSERT INTO opsflow.restores (id, kind, backup_id, database, target_database, status, reason, started_at, finished_at, source,
           verification, requested_by, requested_by_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN NULL ELSE now() END, $10, $11, $12, $13)
         ON CONFLICT (id) DO UPDATE SET backup_id = $3, status = $6, reason = $7,
           finished_at = CASE WHEN $9 THEN NULL ELSE now() END, source = $10, verification = $11`,
        [
          input.id,
          input.kind,
          input.backupId,
          input.database,
          input.targetDatabase,
          input.running ? 'running' : input.status,
          input.reason ?? null,
          input.startedAt,
          input.running === true,
          input.from ? JSON.stringify(input.from) : null,
          input.verification ? JSON.stringify(input.verification) : null,
          input.requester?.keyName ?? null,
          input.requester?.keyId ?? null,
        ],
      );
    },

    async sendRestoreReport(input: { results: RestoreResult[] }): Promise<void> {
      const to = deps.config.mail.opsEmail;
      if (input.results.length === 0) return;
      const kind = input.results[0]!.kind;
      const failed = input.results.filter((r) => r.status !== 'restored');
      if (!to) {
        deps.log.warn({ kind, failed: failed.length }, `${kind} finished; OPS_EMAIL is unset, report not emailed`);
        return;
      }
      const text = input.results
        .map((r) =>
          [
            `${r.database} → ${r.targetDatabase}: ${r.status.toUpperCase()}${r.reason ? ` — ${r.reason}` : ''}`,
            `  backup ${r.backupId ?? '—'} from ${r.from ? `${r.from.store}:${r.from.key}` : '—'}`,
            verificationTable(r.verification),
          ].join('\n'),
        )
        .join('\n\n');
      const what = kind === 'drill' ? 'restore drill' : `restore into ${input.results[0]!.targetDatabase}`;
      await deps.mailer.send({
        to,
        subject: `[opsflow] ${what}: ${failed.length === 0 ? 'passed' : 'FAILED'}`,
        text,
      });
    },

    /**
     * The hourly freshness check: a database whose newest verified backup finished more than `maxAgeMs` ago
     * (or never) is stale. Ops get one email when a database turns stale and again each day it stays so.
     */
    async checkBackupFreshness(input: { maxAgeMs: number }): Promise<FreshnessResult> {
      const names = deps.config.backups.databases.map((d) => d.name);
      const { rows } = await deps.pool.query<{ database: string; last: Date | null; alerted_at: Date | null }>(
        `SELECT d.database, max(b.finished_at) AS last, max(a.alerted_at) AS alerted_at
         FROM unnest($1::text[]) AS d(database)
         LEFT JOIN opsflow.backups b ON b.database = d.database AND b.status = 'verified'
         LEFT JOIN opsflow.backup_freshness_alerts a ON a.database = d.database
         GROUP BY d.database ORDER BY d.database`,
        [names],
      );
      const now = Date.now();
      const databases = rows.map((r) => ({
        database: r.database,
        lastVerifiedAt: r.last?.toISOString() ?? null,
        stale: !r.last || now - r.last.getTime() > input.maxAgeMs,
      }));
      const dayMs = 24 * 3600 * 1000;
      const due = rows.filter(
        (r, i) => databases[i]!.stale && (!r.alerted_at || now - r.alerted_at.getTime() >= dayMs),
      );
      const fresh = databases.filter((d) => !d.stale).map((d) => d.database);
      if (fresh.length > 0) {
        await deps.pool.query('DELETE FROM opsflow.backup_freshness_alerts WHERE database = ANY ($1)', [fresh]);
      }
      const alerted: string[] = [];
      if (due.length > 0) {
        const hours = (input.maxAgeMs / 3600_000).toFixed(0);
        const lines = due.map(
          (r) =>
            `  ${r.database}: ${r.last ? `last verified backup finished ${r.last.toISOString()}` : 'no verified backup ever'}`,
        );
        if (deps.config.mail.opsEmail) {
          await deps.mailer.send({
            to: deps.config.mail.opsEmail,
            subject: `[opsflow] [ALERT] no verified backup in ${hours} h: ${due.map((r) => r.database).join(', ')}`,
            text: [`These databases have no verified backup in the last ${hours} hours:`, ...lines].join('\n'),
          });
        } else {
          deps.log.error({ databases: due.map((r) => r.database) }, 'backups are stale; OPS_EMAIL is unset');
        }
        await deps.pool.query(
          `INSERT INTO opsflow.backup_freshness_alerts (database, alerted_at) SELECT unnest($1::text[]), now()
           ON CONFLICT (database) DO UPDATE SET alerted_at = now()`,
          [due.map((r) => r.database)],
        );
        alerted.push(...due.map((r) => r.database));
      }
      return { checkedAt: new Date(now).toISOString(), databases, alerted };
    },

    /** Upserts the catalog row (idempotent: keyed by the run id). */
    async recordBackup(input: {
      id: string;
      database: string;
      startedAt: string;
      status: 'running' | 'verified' | 'failed';
      reason?: string;
      steps?: Record<string, { startedAt: string; ms: number }>;
      dump?: DumpResult;
      verification?: VerificationResult;
    }): Promise<void> {
      const done = input.status !== 'running';
      await deps.pool.query(
        `INSERT INTO opsflow.backups (id, database, status, reason, started_at, finished_at, steps, size_bytes, sha256, locations, table_counts, verification)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (id) DO UPDATE SET status = $3, reason = $4, finished_at = CASE WHEN $6 THEN now() END, steps = $7,
           size_bytes = $8, sha256 = $9, locations = $10, table_counts = $11, verification = $12`,
        [
          input.id,
          input.database,
          input.status,
          input.reason ?? null,
          input.startedAt,
          done,
          JSON.stringify(input.steps ?? {}),
          input.dump?.sizeBytes ?? null,
          input.dump?.sha256 ?? null,
          JSON.stringify(input.dump?.locations ?? []),
          input.dump ? JSON.stringify(input.dump.tableCounts) : null,
          input.verification ? JSON.stringify(input.verification) : null,
        ],
      );
    },

    /** Per store: decide with planRetention, record the decision, then delete. */
    async applyRetention(input: { database: string }): Promise<{ backupId: string; store: StoreName }[]> {
      const deleted: { backupId: string; store: StoreName }[] = [];
      for (const store of stores) {
        const policy = deps.config.backups.retention[store.name];
        const { rows } = await deps.pool.query<{
          id: string;
          started_at: Date;
          status: string;
          locations: StoredCopy[];
        }>(
          `SELECT id, started_at, status, locations FROM opsflow.backups
           WHERE database = $1 AND status <> 'running' AND NOT ($2 = ANY (deleted_from)) AND locations @> $3::jsonb`,
          [input.database, store.name, JSON.stringify([{ store: store.name }])],
        );
        const plan = planRetention(
          rows.map((r) => ({ id: r.id, startedAt: r.started_at.toISOString(), verified: r.status === 'verified' })),
          policy,
        );
        for (const id of plan.delete) {
          await deps.pool.query(
            `INSERT INTO opsflow.backup_retention (backup_id, store) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
            [id, store.name],
          );
          const row = rows.find((r) => r.id === id)!;
          const loc = row.locations.find((l) => l.store === store.name)!;
          await store.remove(loc.key);
          await deps.pool.query(
            `UPDATE opsflow.backup_retention SET deleted_at = now() WHERE backup_id = $1 AND store = $2`,
            [id, store.name],
          );
          await deps.pool.query(
            `UPDATE opsflow.backups SET deleted_from = array_append(deleted_from, $2) WHERE id = $1`,
            [id, store.name],
          );
          deleted.push({ backupId: id, store: store.name });
        }
      }
      return deleted;
    },

    async sendBackupReport(input: { result: BackupResult; steps: Record<string, { ms: number }> }): Promise<void> {
      const to = deps.config.mail.opsEmail;
      const r = input.result;
      if (!to) {
        deps.log.warn({ backup: r.id, status: r.status }, 'backup finished; OPS_EMAIL is unset, report not emailed');
        return;
      }
      const mb = r.sizeBytes === undefined ? '—' : `${(r.sizeBytes / 1024 / 1024).toFixed(1)} MB`;
      const text = [
        `Backup ${r.id}: ${r.status.toUpperCase()}${r.reason ? ` — ${r.reason}` : ''}`,
        `Database: ${r.database}   Size: ${mb}   sha256: ${r.sha256 ?? '—'}`,
        `Stored: ${r.locations.map((l) => `${l.store}:${l.key}`).join(', ') || 'nowhere'}`,
        `Steps: ${Object.entries(input.steps)
          .map(([k, v]) => `${k} ${(v.ms / 1000).toFixed(1)} s`)
          .join(', ')}`,
        r.deleted.length
          ? `Retention deleted: ${r.deleted.map((d) => `${d.backupId} (${d.store})`).join(', ')}`
          : 'Retention deleted nothing',
        '',
        'Verification:',
        verificationTable(r.verification),
      ].join('\n');
      await deps.mailer.send({
        to,
        subject: `[opsflow] backup ${r.database}: ${r.status === 'verified' ? 'verified' : 'FAILED'}`,
        text,
      });
    },
  };
};
