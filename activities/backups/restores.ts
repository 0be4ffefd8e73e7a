/**
 * Restore activities: the catalogue row a restore starts from, a copy checked against the catalogue before
 * pg_restore reads a byte of it, the restore into a scratch or staging database with row counts compared,
 * the target checks and the promotion (restore-target.ts), the restore record and report, and the freshness
 * check.
 */
import { rm } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import pg from 'pg';
import { quoteIdent } from '../../lib/db.js';
import { databaseUrlOn, maintenanceUrl, restoreServerUrl, type Server } from '../../lib/backups/databases.js';
import { markScratch } from '../../lib/backups/scratch.js';
import type { BlobStore } from '../../lib/backups/stores.js';
import { publishOpsEvent } from '../../lib/webhooks/ops-events.js';
import type { WebhookServiceDeps } from '../../lib/webhooks/service.js';
import type {
  FreshnessResult,
  GlobalsCopy,
  GlobalsRestore,
  RestoreResult,
  StoredCopy,
  StoreName,
  VerificationResult,
} from '../../lib/backups/contract.js';
import type { BackupActivityDeps, RestorableBackup } from './deps.js';
import { checkedCopy } from './copies.js';
import { applyGlobals } from './globals.js';
import { createRestoreTargetActivities } from './restore-target.js';
import {
  BackupErrorType,
  bin,
  countRows,
  expectedTables,
  fail,
  onCancel,
  pgConnection,
  rolesNotSettable,
  run,
  verificationTable,
} from './pg-tools.js';

export const createRestoreActivities = (
  deps: BackupActivityDeps & {
    stores: BlobStore[];
    storeByName: (name: StoreName) => BlobStore;
    events: WebhookServiceDeps;
  },
) => {
  const { stores, storeByName, events } = deps;

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
    const copy = await checkedCopy(deps.config, storeByName(input.location.store), input.location, {
      sha256: input.sha256,
      sizeBytes: input.sizeBytes,
      tables: Object.keys(input.expected),
    });
    if (!copy.ok) return { ok: false, reason: copy.reason, tables };
    const admin = new pg.Client({ connectionString: maintenanceUrl(deps.config, input.server) });
    await admin.connect();
    const url = databaseUrlOn(deps.config, input.server, input.dbName);
    let ok = false;
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(input.dbName)} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${quoteIdent(input.dbName)}`);
      // Marked until dropped or promoted: a run killed in between leaves something the janitor can prove is junk.
      await markScratch(admin, input.dbName, {
        kind: input.keep ? 'restore-staging' : input.dbName.startsWith('opsflow_drill_') ? 'drill' : 'verify',
        run: Context.current().info.workflowExecution?.runId ?? 'unknown',
      });
      // Owners and grants are kept when the restoring role may make every owner the archive names an owner (a
      // superuser, or a member of each); a role that may not (compose's backup role is no superuser) restores
      // everything as its own, and the result names the owners not kept — never a restore that fails halfway.
      const ownersNotKept = input.preserveOwnership ? await rolesNotSettable(admin, copy.owners) : [];
      const keepOwners = input.preserveOwnership && ownersNotKept.length === 0;
      const notKept = ownersNotKept.length > 0 ? { ownersNotKept } : {};
      const ownership = keepOwners ? [] : ['--no-owner', '--no-privileges'];
      const conn = pgConnection(url);
      // BACKUP_JOBS > 1: as many tables at once (pg_restore reads a file or a directory in parallel alike).
      const jobs = deps.config.backups.jobs > 1 ? [`--jobs=${deps.config.backups.jobs}`] : [];
      const restore = run(
        bin(deps.config, 'pg_restore'),
        [...ownership, ...jobs, '--exit-on-error', conn.arg, copy.file],
        {
          env: conn.env,
        },
      );
      const stopCancel = onCancel(() => restore.child.kill('SIGKILL'));
      const beat = setInterval(() => Context.current().heartbeat({ step: 'restore' }), 1000);
      try {
        await restore.done;
      } catch (err) {
        return { ok: false, reason: `restore failed: ${(err as Error).message}`, tables, ...notKept };
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
        return { ok: false, reason: `row counts differ: ${diffs.join(', ')}`, tables, ...notKept };
      }
      ok = true;
      return { ok: true, tables, ...notKept };
    } finally {
      if (!ok || !input.keep) {
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(input.dbName)} WITH (FORCE)`).catch(() => undefined);
      }
      await admin.end();
      await rm(copy.dir, { recursive: true, force: true });
    }
  }

  return {
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
     * A DR restore's first step: the backup's globals applied to the RESTORE_SERVERS entry (applyGlobals). A
     * backup made before globals were stored has none: the result says so and the restore goes on.
     */
    async restoreGlobals(input: { backupId: string; server: string }): Promise<GlobalsRestore> {
      const url = restoreServerUrl(deps.config, input.server);
      const { rows } = await deps.pool.query<{
        globals: GlobalsCopy | null;
        locations: StoredCopy[];
        deleted_from: string[];
      }>('SELECT globals, locations, deleted_from FROM opsflow.backups WHERE id = $1', [input.backupId]);
      const row = rows[0];
      if (!row) throw fail(BackupErrorType.NotRestorable, `backup ${input.backupId} not found`);
      const globals = row.globals;
      if (!globals) return { rolesCreated: [], rolesPresent: [], failed: [], skipped: 0, missing: true };
      const copies = row.locations
        .filter((l) => !row.deleted_from.includes(l.store) && stores.some((s) => s.name === l.store))
        .map((l) => ({ store: storeByName(l.store), copy: globals }));
      return applyGlobals(deps.config, copies, url);
    },

    ...createRestoreTargetActivities(deps),

    /** Upserts a restore / drill catalog row (keyed by id). */
    async recordRestore(input: RestoreResult & { startedAt: string; running?: boolean }): Promise<void> {
      await deps.pool.query(
        `INSERT INTO opsflow.restores (id, kind, backup_id, database, target_database, status, reason, started_at, finished_at, source,
           verification, requested_by, requested_by_key, server, globals, rto_ms, rto_target_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN NULL ELSE now() END, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (id) DO UPDATE SET backup_id = $3, status = $6, reason = $7,
           finished_at = CASE WHEN $9 THEN NULL ELSE now() END, source = $10, verification = $11, globals = $15,
           rto_ms = $16`,
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
          input.server ?? null,
          input.globals ? JSON.stringify(input.globals) : null,
          input.rtoMs ?? null,
          input.rtoTargetMs ?? null,
        ],
      );
    },

    async sendRestoreReport(input: { results: RestoreResult[] }): Promise<void> {
      const to = deps.config.mail.opsEmail;
      if (input.results.length === 0) return;
      for (const r of input.results) {
        const ok = r.status === 'restored';
        await publishOpsEvent(
          events,
          ok ? 'restore.succeeded' : 'restore.failed',
          {
            restoreId: r.id,
            kind: r.kind,
            database: r.database,
            targetDatabase: r.targetDatabase,
            backupId: r.backupId,
            reason: r.reason ?? null,
          },
          `restore:${r.id}:${r.status}`,
        );
      }
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
        for (const r of due) {
          // Keyed by the alert it repeats (none yet, or the last one's time): a retried check publishes once.
          await publishOpsEvent(
            events,
            'backup.stale',
            { database: r.database, lastVerifiedAt: r.last?.toISOString() ?? null, maxAgeHours: Number(hours) },
            `backup.stale:${r.database}:${r.alerted_at?.toISOString() ?? 'first'}`,
          );
        }
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
  };
};
