/**
 * What the backup and restore activities are built from, and the shapes both halves share. Its own module so
 * restores.ts need not import index.ts, which builds the restore activities.
 */
import type { Client } from '@temporalio/client';
import type { BlobStore } from '../../lib/backups/stores.js';
import type { Config } from '../../lib/config.js';
import type { Pool } from '../../lib/db.js';
import type { Logger } from '../../lib/logger.js';
import type { Mailer } from '../../lib/mailer.js';
import type { TaskQueues } from '../../lib/task-queues.js';
import type { StoredCopy } from '../../lib/backups/contract.js';

export interface BackupActivityDeps {
  config: Config;
  pool: Pool;
  mailer: Mailer;
  log: Logger;
  /** For the ops events (backup.*, restore.*), published through the webhook family. */
  client: Client;
  queues: TaskQueues;
  stores?: BlobStore[];
}

/** A verified backup that can be restored, with the copies retention has not removed. */
export interface RestorableBackup {
  backupId: string;
  database: string;
  sha256: string;
  sizeBytes: number;
  locations: StoredCopy[];
  tableCounts: Record<string, number>;
}
