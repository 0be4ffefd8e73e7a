/**
 * Backup activities: dump (snapshot, row counts, pg_dump streamed to every store at once with sha256),
 * verify (re-read every copy, restore into a scratch database, compare counts), catalog, retention and the
 * report — and, from restores.ts, the restore activities, so the backup family's workflows proxy one object.
 * Long steps heartbeat and kill their child process when cancelled.
 */
import { createHash } from 'node:crypto';
import { finished } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { publishOpsEvent } from '../../lib/webhooks/ops-events.js';
import { webhookServiceDeps } from '../../lib/webhooks/service.js';
import { backupKeyId, encryptingStream } from '../../lib/backups/encryption.js';
import { configuredStores, type BlobStore, type PendingWrite } from '../../lib/backups/stores.js';
import {
  globalsKey,
  type BackupResult,
  type DumpResult,
  type GlobalsCopy,
  type StoredCopy,
  type StoreName,
  type VerificationResult,
} from '../../lib/backups/contract.js';
import { planRetention } from '../../workflows/backups/retention.js';
import {
  BackupErrorType,
  bin,
  countRows,
  execFileAsync,
  expectedTables,
  fail,
  majorOf,
  onCancel,
  scratchName,
  verificationTable,
} from './pg-tools.js';
import { startDump } from './dump-process.js';
import { storeGlobals } from './globals.js';
import { createRestoreActivities } from './restores.js';

import { scratchServers, sweepScratch, type ScratchSweep } from '../../lib/backups/scratch.js';
export { BackupErrorType, pgConnection, scratchName } from './pg-tools.js';

/** A dump whose output has not moved for this long stops heartbeating (the heartbeat timeout ends it). */
export const STALL_LIMIT_MS = 5 * 60_000;

/** The advisory lock key a dump holds in the database it dumps ("opsflow:backup" as two int4s would read). */
export const BACKUP_LOCK_KEY = 0x6f707366;
export type { BackupActivityDeps, RestorableBackup } from './deps.js';
import type { BackupActivityDeps } from './deps.js';

export const createBackupActivities = (deps: BackupActivityDeps) => {
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
  const events = webhookServiceDeps(deps.config, deps.pool, deps.client, deps.queues);
  const restores = createRestoreActivities({ ...deps, stores, storeByName, events });
  const { restoreAndCompare } = restores;

  return {
    /** Snapshot + counts, then pg_dump of that snapshot streamed into every store while hashing. */
    async dumpToStores(input: { runId: string; database: string; key: string }): Promise<DumpResult> {
      const url = databaseUrl(input.database);
      const source = new pg.Client({ connectionString: url });
      await source.connect();
      const writes: { store: BlobStore; write: PendingWrite }[] = [];
      let globals: GlobalsCopy | undefined;
      try {
        // One dump per database at a time, whoever started it (schedule, API, a pre-deploy backup): a session
        // lock in the database itself, released when this connection ends — a dead worker's goes with it.
        const lock = await source.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${BACKUP_LOCK_KEY}) AS ok`);
        if (!lock.rows[0]!.ok) {
          throw fail(
            BackupErrorType.AlreadyRunning,
            `another backup of ${input.database} is dumping now; one backup per database at a time`,
          );
        }
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

        // The server's roles and tablespaces first (small, quick), beside where the dump goes.
        globals = await storeGlobals(deps.config, stores, url, globalsKey(input.key));
        for (const store of stores) writes.push({ store, write: store.write(input.key) });
        const dump = startDump(deps.config, url, snapshot);
        const stopDump = () => dump.stop();
        const stopCancel = onCancel(stopDump);
        const hash = createHash('sha256');
        let size = 0;
        // Heartbeats say the dump moves: a pipe stalled longer than STALL_LIMIT_MS (a store that hangs without
        // failing, pg_dump stuck) stops them, and the heartbeat timeout ends the attempt in minutes, not hours.
        let lastSize = 0;
        let lastProgress = Date.now();
        const beat = setInterval(() => {
          // A directory dump writes its temporary directory before a byte is streamed: that counts as moving.
          const moved = size + dump.staged();
          if (moved !== lastSize) {
            lastSize = moved;
            lastProgress = Date.now();
          }
          if (Date.now() - lastProgress < STALL_LIMIT_MS) Context.current().heartbeat({ bytes: size });
        }, 1000);
        // A store that gives up stops reading its sink; the dump would wait for it forever. Stop the dump.
        const storeFailed = Promise.race(
          writes.map(({ store, write }) => write.failed.then((err) => ({ store: store.name, err }))),
        );
        // Encrypted as it streams when BACKUP_ENCRYPTION_KEY is set: the stores, and the sha256 in the catalogue,
        // only ever see the encrypted bytes.
        const encryptWith = deps.config.backups.encryption.current;
        const out = encryptWith ? dump.stdout.pipe(encryptingStream(encryptWith)) : dump.stdout;
        const drained = finished(out);
        // A dump stopped early never drains; that is not an error of its own.
        drained.catch(() => undefined);
        try {
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
          // Done when pg_dump has exited and its last bytes (the encryption's last chunk) went out.
          const failure = await Promise.race([Promise.all([dump.done, drained]).then(() => undefined), storeFailed]);
          if (failure) {
            stopDump();
            await dump.done.catch(() => undefined);
            throw fail(BackupErrorType.StoreFailed, `store ${failure.store}: ${failure.err.message}`, false);
          }
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
          globals,
          format: dump.format,
          ...(encryptWith ? { encryptionKeyId: backupKeyId(encryptWith).toString('hex') } : {}),
        };
      } catch (err) {
        await Promise.all(writes.map(({ write }) => write.abort()));
        const written = globals;
        if (written) await Promise.all(stores.map((s) => s.remove(written.key).catch(() => undefined)));
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
    ...restores,

    /** The janitor: drops leftover scratch databases (lib/backups/scratch.ts) on every server opsflow uses. */
    async sweepScratchDatabases(input: { olderThanMs: number }): Promise<ScratchSweep[]> {
      const results: ScratchSweep[] = [];
      for (const server of scratchServers(deps.config)) {
        Context.current().heartbeat({ server: server.label });
        const r = await sweepScratch(deps.config, server, input.olderThanMs);
        if (r.dropped.length || r.marked.length) deps.log.info(r, 'scratch databases swept');
        results.push(r);
      }
      return results;
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
        `INSERT INTO opsflow.backups (id, database, status, reason, started_at, finished_at, steps, size_bytes, sha256, locations, table_counts, verification, globals, encryption_key_id, format)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (id) DO UPDATE SET status = $3, reason = $4, finished_at = CASE WHEN $6 THEN now() END, steps = $7,
           size_bytes = $8, sha256 = $9, locations = $10, table_counts = $11, verification = $12, globals = $13,
           encryption_key_id = $14, format = $15`,
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
          input.dump?.globals ? JSON.stringify(input.dump.globals) : null,
          input.dump?.encryptionKeyId ?? null,
          input.dump?.format ?? null,
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
          globals: GlobalsCopy | null;
        }>(
          `SELECT id, started_at, status, locations, globals FROM opsflow.backups
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
          if (row.globals) await store.remove(row.globals.key);
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
      await publishOpsEvent(
        events,
        r.status === 'verified' ? 'backup.verified' : 'backup.failed',
        {
          backupId: r.id,
          database: r.database,
          status: r.status,
          reason: r.reason ?? null,
          sizeBytes: r.sizeBytes ?? null,
          sha256: r.sha256 ?? null,
          stores: r.locations.map((l) => l.store),
        },
        `backup:${r.id}:${r.status}`,
      );
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
