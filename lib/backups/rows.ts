/**
 * The backup catalogue (`opsflow.backups`, one row per run) and the restore catalogue (`opsflow.restores`, one
 * row per restore or drill) as the API and the console read them. The workflows' activities write the rows.
 */
import type { Pool } from '../db.js';
import { catalogPage, type CursorKey } from '../pagination.js';
import type { GlobalsCopy, GlobalsRestore, StoredCopy, StoreName, VerificationResult } from './contract.js';

type BackupStatus = 'running' | 'verified' | 'failed';
type RestoreStatus = 'running' | 'restored' | 'failed';
/** Each step of a run: when it started and how long it took. */
type Steps = Record<string, { startedAt: string; ms: number }>;

export interface BackupRow {
  id: string;
  database: string;
  status: BackupStatus;
  reason: string | null;
  started_at: Date;
  finished_at: Date | null;
  steps: Steps;
  size_bytes: string | null;
  sha256: string | null;
  locations: StoredCopy[];
  table_counts: Record<string, number> | null;
  verification: VerificationResult | null;
  deleted_from: StoreName[];
  globals: GlobalsCopy | null;
  encryption_key_id: string | null;
  format: 'custom' | 'directory' | null;
}

export interface BackupView {
  id: string;
  database: string;
  status: BackupStatus;
  reason: string | null;
  startedAt: string;
  finishedAt: string | null;
  steps: Steps;
  sizeBytes: number | null;
  sha256: string | null;
  locations: StoredCopy[];
  /** The server's roles and tablespaces, stored beside the dump in the same stores (null: made before that). */
  globals: GlobalsCopy | null;
  /** The id of the key its copies are encrypted under; null: stored unencrypted. */
  encryptionKeyId: string | null;
  format: 'custom' | 'directory';
  verification: VerificationResult | null;
  deletedFrom: StoreName[];
}

export const backupView = (r: BackupRow): BackupView => ({
  id: r.id,
  database: r.database,
  status: r.status,
  reason: r.reason,
  startedAt: r.started_at.toISOString(),
  finishedAt: r.finished_at?.toISOString() ?? null,
  steps: r.steps,
  sizeBytes: r.size_bytes === null ? null : Number(r.size_bytes),
  sha256: r.sha256,
  locations: r.locations,
  globals: r.globals ?? null,
  encryptionKeyId: r.encryption_key_id ?? null,
  format: r.format ?? 'custom',
  verification: r.verification,
  deletedFrom: r.deleted_from,
});

export type RestoreKind = 'restore' | 'drill' | 'dr-drill';

export interface RestoreRow {
  id: string;
  kind: RestoreKind;
  backup_id: string | null;
  database: string;
  target_database: string;
  status: RestoreStatus;
  reason: string | null;
  started_at: Date;
  finished_at: Date | null;
  source: StoredCopy | null;
  verification: VerificationResult | null;
  requested_by: string | null;
  requested_by_key: string | null;
  server: string | null;
  globals: GlobalsRestore | null;
  rto_ms: string | null;
  rto_target_ms: string | null;
}

export interface RestoreView {
  id: string;
  kind: RestoreKind;
  server: string | null;
  backupId: string | null;
  database: string;
  targetDatabase: string;
  status: RestoreStatus;
  reason: string | null;
  startedAt: string;
  finishedAt: string | null;
  source: StoredCopy | null;
  verification: VerificationResult | null;
  requestedBy: { keyId: string | null; keyName: string } | null;
  globals: GlobalsRestore | null;
  rtoMs: number | null;
  rtoTargetMs: number | null;
}

export const restoreView = (r: RestoreRow): RestoreView => ({
  id: r.id,
  kind: r.kind,
  server: r.server ?? null,
  backupId: r.backup_id,
  database: r.database,
  targetDatabase: r.target_database,
  status: r.status,
  reason: r.reason,
  startedAt: r.started_at.toISOString(),
  finishedAt: r.finished_at?.toISOString() ?? null,
  source: r.source,
  verification: r.verification,
  requestedBy: r.requested_by === null ? null : { keyId: r.requested_by_key, keyName: r.requested_by },
  globals: r.globals ?? null,
  rtoMs: r.rto_ms === null || r.rto_ms === undefined ? null : Number(r.rto_ms),
  rtoTargetMs: r.rto_target_ms === null || r.rto_target_ms === undefined ? null : Number(r.rto_target_ms),
});

export async function backupRow(pool: Pool, id: string): Promise<BackupRow | undefined> {
  const { rows } = await pool.query<BackupRow>('SELECT * FROM opsflow.backups WHERE id = $1', [id]);
  return rows[0];
}

export async function restoreRow(pool: Pool, id: string): Promise<RestoreRow | undefined> {
  const { rows } = await pool.query<RestoreRow>('SELECT * FROM opsflow.restores WHERE id = $1', [id]);
  return rows[0];
}

export function backupPage(
  pool: Pool,
  filters: { database?: string; status?: BackupStatus },
  query: { after?: CursorKey; limit: number },
) {
  return catalogPage<BackupRow>(pool, 'opsflow.backups', { database: filters.database, status: filters.status }, query);
}

export function restorePage(
  pool: Pool,
  filters: { kind?: RestoreKind; database?: string },
  query: { after?: CursorKey; limit: number },
) {
  return catalogPage<RestoreRow>(pool, 'opsflow.restores', { kind: filters.kind, database: filters.database }, query);
}

/** A backup run as the console plots it. */
export type BackupRun = Pick<
  BackupRow,
  'id' | 'database' | 'status' | 'reason' | 'started_at' | 'finished_at' | 'size_bytes' | 'steps'
>;
/** A restore or drill as the console lists it. */
export type RestoreSummary = Pick<
  RestoreRow,
  'id' | 'kind' | 'backup_id' | 'database' | 'target_database' | 'status' | 'reason' | 'started_at' | 'finished_at'
>;

/** The last 30 backups of each database (oldest first, for plotting), and the newest 30 restores and drills. */
export async function backupHistory(pool: Pool, databases: string[]) {
  const [runs, restores] = await Promise.all([
    pool.query<BackupRun>(
      `SELECT b.* FROM unnest($1::text[]) AS d (name)
       CROSS JOIN LATERAL (SELECT id, database, status, reason, started_at, finished_at, size_bytes, steps
                           FROM opsflow.backups WHERE database = d.name ORDER BY started_at DESC LIMIT 30) b
       ORDER BY b.database, b.started_at`,
      [databases],
    ),
    pool.query<RestoreSummary>(
      `SELECT id, kind, backup_id, database, target_database, status, reason, started_at, finished_at
       FROM opsflow.restores ORDER BY started_at DESC LIMIT 30`,
    ),
  ]);
  const byDatabase = new Map<string, BackupRun[]>(databases.map((d) => [d, []]));
  for (const r of runs.rows) byDatabase.get(r.database)?.push(r);
  return { byDatabase, restores: restores.rows };
}

/** Per database: its newest verified backup's time and its newest backup of any status (two index lookups each). */
export async function backupStanding(pool: Pool, databases: string[]) {
  const { rows } = await pool.query<{
    name: string;
    verified_at: Date | null;
    last_id: string | null;
    last_status: string | null;
    last_started_at: Date | null;
  }>(
    `SELECT d.name, v.finished_at AS verified_at, l.id AS last_id, l.status AS last_status,
            l.started_at AS last_started_at
     FROM unnest($1::text[]) AS d (name)
     LEFT JOIN LATERAL (SELECT finished_at FROM opsflow.backups
                        WHERE database = d.name AND status = 'verified' ORDER BY started_at DESC LIMIT 1) v ON true
     LEFT JOIN LATERAL (SELECT id, status, started_at FROM opsflow.backups
                        WHERE database = d.name ORDER BY started_at DESC LIMIT 1) l ON true`,
    [databases],
  );
  return rows;
}
