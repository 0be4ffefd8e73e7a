/**
 * Backup activities: dump (snapshot, row counts, pg_dump streamed to every store at once with sha256),
 * verify (re-read every copy, pg_restore into a scratch database, compare counts), catalog, retention
 * and the report. Long steps heartbeat and kill their child process when cancelled.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import type { Config } from '../lib/config.js';
import { quoteIdent, type Pool } from '../lib/db.js';
import type { Logger } from '../lib/logger.js';
import type { Mailer } from '../lib/mailer.js';
import { configuredStores, type BlobStore, type PendingWrite } from '../lib/backups/stores.js';
import type {
  BackupResult,
  DumpResult,
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
} as const;

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

/** Runs a PostgreSQL client tool, killing it if the activity is cancelled. */
function run(command: string, args: string[], stdin?: Readable): { child: ChildProcess; done: Promise<string> } {
  const child = spawn(command, args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
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

  return {
    /** Snapshot + counts, then pg_dump of that snapshot streamed into every store while hashing. */
    async dumpToStores(input: { runId: string; database: string; key: string }): Promise<DumpResult> {
      const url = databaseUrl(input.database);
      const source = new pg.Client({ connectionString: url });
      await source.connect();
      const writes: { store: BlobStore; write: PendingWrite }[] = [];
      try {
        const { stdout } = await execFileAsync(bin(deps.config, 'pg_dump'), ['--version']).catch((err: Error) => {
          throw fail(BackupErrorType.DumpFailed, `pg_dump not usable: ${err.message}`);
        });
        const clientMajor = Number(/(\d+)(?:\.\d+)?/.exec(stdout)?.[1] ?? 0);
        const server = await source.query<{ v: string }>('SHOW server_version_num');
        const serverMajor = majorOf(Number(server.rows[0]!.v));
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
        const dump = run(bin(deps.config, 'pg_dump'), ['--format=custom', `--snapshot=${snapshot}`, `--dbname=${url}`]);
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
     * Re-reads every stored copy (sha256 and size must match), lists it with pg_restore, restores the first
     * copy into a scratch database and compares row counts with the snapshot's. Never throws for a bad
     * backup: the result says why it is not verified. The scratch database is dropped whatever happens.
     */
    async verifyBackup(input: {
      runId: string;
      locations: StoredCopy[];
      sha256: string;
      sizeBytes: number;
      tableCounts: Record<string, number>;
    }): Promise<VerificationResult> {
      const tables = Object.entries(input.tableCounts).map(([table, expected]) => ({
        table,
        expected,
        restored: null as number | null,
      }));
      for (const loc of input.locations) {
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
      const first = input.locations[0];
      if (!first) return { ok: false, reason: 'no stored copy', tables };

      const list = run(bin(deps.config, 'pg_restore'), ['--list'], await storeByName(first.store).read(first.key));
      try {
        await list.done;
      } catch (err) {
        return { ok: false, reason: `pg_restore --list: ${(err as Error).message}`, tables };
      }

      const scratch = `opsflow_verify_${input.runId.replace(/[^a-zA-Z0-9]/g, '_').toLowerCase()}`.slice(0, 63);
      const admin = new pg.Client({ connectionString: deps.config.backups.verifyUrl });
      await admin.connect();
      const scratchUrl = new URL(deps.config.backups.verifyUrl);
      scratchUrl.pathname = `/${scratch}`;
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(scratch)} WITH (FORCE)`);
        await admin.query(`CREATE DATABASE ${quoteIdent(scratch)}`);
        const restore = run(
          bin(deps.config, 'pg_restore'),
          ['--no-owner', '--no-privileges', '--exit-on-error', `--dbname=${scratchUrl.toString()}`],
          await storeByName(first.store).read(first.key),
        );
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
        const restored = new pg.Client({ connectionString: scratchUrl.toString() });
        await restored.connect();
        let counts: Record<string, number>;
        try {
          counts = await countRows(restored);
        } finally {
          await restored.end();
        }
        for (const t of tables) t.restored = counts[t.table] ?? null;
        const bad = tables.filter((t) => t.restored !== t.expected);
        const extra = Object.keys(counts).filter((k) => !(k in input.tableCounts));
        if (bad.length > 0 || extra.length > 0) {
          return {
            ok: false,
            reason: `row counts differ: ${[...bad.map((t) => `${t.table} ${t.restored ?? 'missing'}/${t.expected}`), ...extra.map((e) => `${e} unexpected`)].join(', ')}`,
            tables,
          };
        }
        return { ok: true, tables };
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(scratch)} WITH (FORCE)`).catch(() => undefined);
        await admin.end();
      }
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
      const rowsTable = (r.verification?.tables ?? [])
        .map(
          (t) => `  ${t.table.padEnd(40)} ${String(t.expected).padStart(10)} ${String(t.restored ?? '—').padStart(10)}`,
        )
        .join('\n');
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
        'Verification (table, rows in snapshot, rows restored):',
        rowsTable || '  (none)',
      ].join('\n');
      await deps.mailer.send({
        to,
        subject: `[opsflow] backup ${r.database}: ${r.status === 'verified' ? 'verified' : 'FAILED'}`,
        text,
      });
    },
  };
};
