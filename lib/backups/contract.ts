/** The backup family's contract. */
import { defineQuery } from '@temporalio/workflow';
import type { Actor } from '../keys/scopes.js';

export const BACKUP_WORKFLOW = 'backupDatabase';

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
}

export type StoreName = 'local' | 's3';

export interface StoredCopy {
  store: StoreName;
  key: string;
}

export interface BackupInput {
  /** The database's name, as configured in BACKUP_DATABASE_URLS (never a URL: history holds no secrets). */
  database: string;
  /** Retries of the dump and verify steps (production: 3 attempts, 30 s apart, 1 min heartbeat; tests lower them). */
  stepRetry?: { maximumAttempts?: number; initialIntervalMs?: number; heartbeatTimeoutMs?: number };
}

/** The server's globals as stored beside a dump (the same stores): its key, and its stored bytes' sha256 and size. */
export interface GlobalsCopy {
  key: string;
  sha256: string;
  sizeBytes: number;
}

export interface DumpResult {
  sizeBytes: number;
  sha256: string;
  locations: StoredCopy[];
  tableCounts: Record<string, number>;
  /** Absent in results from before globals were stored. */
  globals?: GlobalsCopy;
  /** The key the copies are encrypted under (its id); absent when stored unencrypted. */
  encryptionKeyId?: string;
}

/** Where a dump's globals are stored: beside it, `orders/2026-….dump` → `orders/2026-….globals.sql`. */
export const globalsKey = (dumpKey: string) => dumpKey.replace(/\.dump$/, '') + '.globals.sql';

export interface VerificationResult {
  ok: boolean;
  reason?: string;
  tables: { table: string; expected: number; restored: number | null }[];
  /** A restore that keeps owners, by a role that could not make these owners: restored as that role's own. */
  ownersNotKept?: string[];
}

export interface BackupResult {
  id: string;
  database: string;
  status: 'verified' | 'failed';
  reason?: string;
  sizeBytes?: number;
  sha256?: string;
  locations: StoredCopy[];
  verification?: VerificationResult;
  deleted: { backupId: string; store: StoreName }[];
}

export interface BackupProgress {
  step: 'dump' | 'verify' | 'record' | 'retention' | 'report' | 'done';
}

export const progressQuery = defineQuery<BackupProgress>('progress');
export const backupWorkflowId = (database: string, startedAt: Date) =>
  `backup:${database}:${startedAt.toISOString().replace(/[:.]/g, '-')}`;

// ---- Restore, restore drill, freshness check ----

export const RESTORE_WORKFLOW = 'restoreBackup';
export const RESTORE_DRILL_WORKFLOW = 'backupRestoreDrill';
export const FRESHNESS_WORKFLOW = 'backupFreshnessCheck';

/** One restore per target database at a time: a second one is refused while the first runs. */
export const restoreWorkflowId = (targetDatabase: string) => `restore:${targetDatabase}`;
/** The restore's catalog id (one per run). */
export const restoreCatalogId = (targetDatabase: string, at: Date) =>
  `restore:${targetDatabase}:${at.toISOString().replace(/[:.]/g, '-')}`;

export interface RestoreInput {
  /** Catalog id of this restore (`restoreCatalogId`). */
  id: string;
  backupId: string;
  targetDatabase: string;
  /** Replace a non-empty target. Without it a non-empty target fails the run and nothing changes. */
  overwrite: boolean;
  /** The key that asked for the restore (runs started before scoped keys carry only a key id). */
  requester?: Actor;
  requestedBy?: string;
}

export interface RestoreResult {
  id: string;
  kind: 'restore' | 'drill';
  backupId: string | null;
  database: string;
  targetDatabase: string;
  status: 'restored' | 'failed';
  reason?: string;
  /** Who asked (restores through the API; drills are the schedule's). */
  requester?: Actor;
  /** Which stored copy was restored. */
  from?: StoredCopy;
  verification?: VerificationResult;
}

export interface DrillInput {
  /** Databases to drill (default: every configured one). */
  databases?: string[];
}

/** A database whose newest verified backup is older than this is stale: a day's schedule plus two hours' slack. */
export const DEFAULT_MAX_BACKUP_AGE_MS = 26 * 3600 * 1000;

export interface FreshnessInput {
  /** A database whose newest verified backup is older than this is stale (default DEFAULT_MAX_BACKUP_AGE_MS). */
  maxAgeMs?: number;
}

export interface FreshnessResult {
  checkedAt: string;
  databases: { database: string; lastVerifiedAt: string | null; stale: boolean }[];
  alerted: string[];
}

export interface RestoreProgress {
  step: 'load' | 'check-target' | 'restore' | 'promote' | 'record' | 'report' | 'done';
}
export const restoreProgressQuery = defineQuery<RestoreProgress>('progress');

// ---- Scratch janitor ----

export const SCRATCH_JANITOR_WORKFLOW = 'scratchJanitor';

export interface ScratchJanitorInput {
  /** Marked scratch databases older than this, with nobody connected, are dropped (default a day). */
  olderThanMs?: number;
}

export const DEFAULT_SCRATCH_MAX_AGE_MS = 24 * 3600 * 1000;
