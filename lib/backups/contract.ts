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
  /** pg_dump's format: `custom` (one stream), or `directory` (BACKUP_JOBS > 1, stored as a tar of the directory). */
  format?: 'custom' | 'directory';
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
export const DR_DRILL_WORKFLOW = 'backupDrDrill';
export const FRESHNESS_WORKFLOW = 'backupFreshnessCheck';

/**
 * A restore's target as its ids name it: the database, and `@<server>` when it is on a RESTORE_SERVERS entry
 * (the same name on two servers is two targets).
 */
export const restoreTarget = (targetDatabase: string, server?: string | null) =>
  server ? `${targetDatabase}@${server}` : targetDatabase;
/** One restore per target database at a time: a second one is refused while the first runs. */
export const restoreWorkflowId = (target: string) => `restore:${target}`;
/** The restore's catalog id (one per run). */
export const restoreCatalogId = (target: string, at: Date) =>
  `restore:${target}:${at.toISOString().replace(/[:.]/g, '-')}`;

export interface RestoreInput {
  /** Catalog id of this restore (`restoreCatalogId`). */
  id: string;
  backupId: string;
  targetDatabase: string;
  /** Replace a non-empty target. Without it a non-empty target fails the run and nothing changes. */
  overwrite: boolean;
  /**
   * A RESTORE_SERVERS entry to restore onto (disaster recovery: the server's globals first, then the database);
   * absent: the source's own server.
   */
  server?: string;
  /** The key that asked for the restore (runs started before scoped keys carry only a key id). */
  requester?: Actor;
  requestedBy?: string;
}

/** What a DR restore did with the backup's globals before the database. */
export interface GlobalsRestore {
  /** Roles the target server lacked, created as the source had them (without passwords: set them after). */
  rolesCreated: string[];
  /** Roles the target server had: left exactly as they are. */
  rolesPresent: string[];
  /** Statements the restoring role could not apply (a superuser role, say), with PostgreSQL's reason. */
  failed: { statement: string; reason: string }[];
  /** Statements not applied on purpose: tablespaces, per-database role settings. */
  skipped: number;
  /** The backup was made before globals were stored with each backup: there were none to apply. */
  missing?: true;
}

export interface RestoreResult {
  id: string;
  kind: 'restore' | 'drill' | 'dr-drill';
  /** The RESTORE_SERVERS entry restored onto; absent: the source's own server (or, for a drill, the verify server). */
  server?: string;
  globals?: GlobalsRestore;
  /** DR drills: time from the drill's start to a usable database (restored, counts matched), and its target. */
  rtoMs?: number;
  rtoTargetMs?: number;
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

export interface DrDrillInput {
  databases: string[];
  /** The RESTORE_SERVERS entry the drill restores onto. */
  server: string;
  /** RTO_TARGET: a drill slower than this fails, naming both. */
  rtoTargetMs: number;
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
  step: 'load' | 'check-target' | 'globals' | 'restore' | 'promote' | 'record' | 'report' | 'done';
}
export const restoreProgressQuery = defineQuery<RestoreProgress>('progress');

// ---- Scratch janitor ----

export const SCRATCH_JANITOR_WORKFLOW = 'scratchJanitor';

export interface ScratchJanitorInput {
  /** Marked scratch databases older than this, with nobody connected, are dropped (default a day). */
  olderThanMs?: number;
}

export const DEFAULT_SCRATCH_MAX_AGE_MS = 24 * 3600 * 1000;
