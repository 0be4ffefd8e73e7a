/** The backup family's contract. */
import { defineQuery } from '@temporalio/workflow';

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
  /** Retries of the dump and verify steps (production: 3 attempts, 30 s apart; tests lower them). */
  stepRetry?: { maximumAttempts?: number; initialIntervalMs?: number };
}

export interface DumpResult {
  sizeBytes: number;
  sha256: string;
  locations: StoredCopy[];
  tableCounts: Record<string, number>;
}

export interface VerificationResult {
  ok: boolean;
  reason?: string;
  tables: { table: string; expected: number; restored: number | null }[];
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
