/**
 * Backups and restores as the API drives them: start a backup now (one per database at a time), read the
 * catalogues with a running run's live step, and start a restore of a verified backup after the checks a
 * person would make (the target repeated and on the source's allow-list, never opsflow's, Temporal's or the server's
 * own database, not a non-empty one unless asked).
 * Refusals are BackupErrors.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { defaultPayloadConverter, type QueryDefinition } from '@temporalio/common';
import type { Config } from '../config.js';
import type { Pool } from '../db.js';
import { ServiceError } from '../errors.js';
import type { Actor } from '../keys/scopes.js';
import type { CursorKey } from '../pagination.js';
import { BackupDatabase, OpsKind, OpsStatus } from '../search-attributes.js';
import type { TaskQueues } from '../task-queues.js';
import {
  BACKUP_WORKFLOW,
  backupWorkflowId,
  progressQuery,
  RESTORE_WORKFLOW,
  restoreCatalogId,
  restoreTarget,
  restoreProgressQuery,
  restoreWorkflowId,
  type RestoreInput,
} from './contract.js';
import {
  restoreServerOf,
  restoreServerUrl,
  restoreTargetRefusal,
  targetState,
  type UnknownServerError,
} from './databases.js';
import {
  backupPage,
  backupRow,
  backupView,
  restorePage,
  restoreRow,
  restoreView,
  type BackupView,
  type RestoreKind,
  type RestoreView,
} from './rows.js';

export class BackupError extends ServiceError {}

export interface BackupServiceDeps {
  config: Config;
  pool: Pool;
  temporal: Client;
  queues: TaskQueues;
}

/**
 * Where a running run stands: its step (a query) and its long step's last heartbeat — bytes dumped or
 * fetched so far, the store being verified.
 */
export interface LiveProgress {
  step: string;
  bytes?: number;
  verified?: string;
  server?: string;
}

/** The running step (a query) and the long step's heartbeat, or null once the run ended. */
async function liveProgress<T extends { step: string }>(
  handle: WorkflowHandle,
  query: QueryDefinition<T>,
): Promise<LiveProgress | null> {
  try {
    const description = await handle.describe();
    if (description.status.name !== 'RUNNING') return null;
    const progress = await handle.query(query);
    const beat = description.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
    const heartbeat = beat ? defaultPayloadConverter.fromPayload<Partial<LiveProgress>>(beat) : null;
    return { ...progress, ...(heartbeat ?? {}) };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** A backup or restore accepted but not recorded yet: the run itself answers until its first step writes the row. */
export interface Unrecorded {
  id: string;
  status: 'running';
}

export function createBackupService(deps: BackupServiceDeps) {
  const databases = deps.config.backups.databases.map((d) => d.name);

  return {
    /** Backs a configured database up now (default: the first); a backup of it already running is a conflict. */
    async start(database = databases[0]!): Promise<string> {
      if (!databases.includes(database)) {
        throw new BackupError(
          'unprocessable',
          `database ${database} is not configured (BACKUP_DATABASE_URLS): ${databases.join(', ')}`,
        );
      }
      // One backup per database at a time (the dump also holds a lock in the database, for the starts that do
      // not come through here: the schedule, a pre-deploy backup).
      const running = deps.temporal.workflow.list({
        query: `OpsKind = "backup" AND BackupDatabase = "${database.replace(/["\\]/g, '\\$&')}" AND ExecutionStatus = "Running"`,
        pageSize: 1,
      });
      for await (const r of running) {
        throw new BackupError('conflict', `a backup of ${database} is already running: ${r.workflowId}`, {
          runningBackupId: r.workflowId,
        });
      }
      const id = backupWorkflowId(database, new Date());
      await deps.temporal.workflow.start(BACKUP_WORKFLOW, {
        taskQueue: deps.queues.backups,
        workflowId: id,
        args: [{ database }],
        typedSearchAttributes: [
          { key: OpsKind, value: 'backup' },
          { key: BackupDatabase, value: database },
          { key: OpsStatus, value: 'running' },
        ],
        staticSummary: `backup of ${database} (API)`,
      });
      return id;
    },

    async list(
      filters: { database?: string; status?: 'running' | 'verified' | 'failed' },
      query: { after?: CursorKey; limit: number },
    ) {
      const { items, nextCursor } = await backupPage(deps.pool, filters, query);
      return { items: items.map(backupView), nextCursor };
    },

    /** One run: the catalogue row (once its first step wrote it) and its live step while it runs. */
    async get(id: string): Promise<(BackupView | Unrecorded) & { progress: LiveProgress | null }> {
      const row = await backupRow(deps.pool, id);
      const progress = await liveProgress(deps.temporal.workflow.getHandle(id), progressQuery);
      if (!row && !progress) throw new BackupError('not_found', `backup ${id} not found`);
      return { ...(row ? backupView(row) : { id, status: 'running' as const }), progress };
    },

    /** Restores a verified backup into a database on its source server. */
    async restore(
      backupId: string,
      req: { targetDatabase: string; confirm: string; overwrite: boolean; server?: string },
      requester: Actor,
    ): Promise<{ id: string; workflowId: string }> {
      if (req.confirm !== req.targetDatabase) {
        throw new BackupError('unprocessable', 'confirm must repeat targetDatabase exactly');
      }
      const backup = await backupRow(deps.pool, backupId);
      if (!backup) throw new BackupError('not_found', `backup ${backupId} not found`);
      if (backup.status !== 'verified') {
        throw new BackupError('conflict', `backup ${backupId} is ${backup.status}; only verified backups are restored`);
      }
      if (!databases.includes(backup.database)) {
        throw new BackupError(
          'unprocessable',
          `database ${backup.database} is no longer configured (BACKUP_DATABASE_URLS)`,
        );
      }
      if (req.server !== undefined) {
        try {
          restoreServerUrl(deps.config, req.server);
        } catch (err) {
          const { message } = err as UnknownServerError;
          throw new BackupError('unprocessable', message, [{ path: 'server', message }]);
        }
      }
      const server = restoreServerOf(backup.database, req.server);
      const refusal = await restoreTargetRefusal(deps.config, backup.database, req.targetDatabase, server);
      if (refusal) {
        throw new BackupError('unprocessable', refusal, [{ path: 'targetDatabase', message: refusal }]);
      }
      if (!req.overwrite && (await targetState(deps.config, server, req.targetDatabase)) === 'non-empty') {
        throw new BackupError(
          'conflict',
          `database ${req.targetDatabase} is not empty; add overwrite: true to replace it`,
        );
      }
      const target = restoreTarget(req.targetDatabase, req.server);
      const input: RestoreInput = {
        id: restoreCatalogId(target, new Date()),
        backupId,
        targetDatabase: req.targetDatabase,
        overwrite: req.overwrite,
        ...(req.server ? { server: req.server } : {}),
        requester,
      };
      const workflowId = restoreWorkflowId(target);
      try {
        await deps.temporal.workflow.start(RESTORE_WORKFLOW, {
          taskQueue: deps.queues.backups,
          workflowId,
          args: [input],
          typedSearchAttributes: [
            { key: OpsKind, value: 'backup-restore' },
            { key: BackupDatabase, value: backup.database },
            { key: OpsStatus, value: 'running' },
          ],
          staticSummary: `restore ${backupId} into ${req.targetDatabase}${req.server ? ` on ${req.server}` : ''}${req.overwrite ? ' (overwrite)' : ''}`,
          // Lets getRestore answer for this run before its first activity has written the row.
          memo: { restoreId: input.id },
        });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) {
          throw new BackupError('conflict', `a restore into ${target} is already running`, {
            workflowId,
          });
        }
        throw err;
      }
      return { id: input.id, workflowId };
    },

    async listRestores(
      filters: { kind?: RestoreKind; database?: string },
      query: { after?: CursorKey; limit: number },
    ) {
      const { items, nextCursor } = await restorePage(deps.pool, filters, query);
      return { items: items.map(restoreView), nextCursor };
    },

    /** One restore or drill: its row and live step, or, before its row exists, the run itself. */
    async getRestore(id: string): Promise<(RestoreView | Unrecorded) & { progress: LiveProgress | null }> {
      const row = await restoreRow(deps.pool, id);
      if (!row) {
        const target = /^restore:([^:]+):/.exec(id)?.[1];
        const handle = target ? deps.temporal.workflow.getHandle(restoreWorkflowId(target)) : undefined;
        const memo = handle
          ? await handle.describe().then(
              (d) => d.memo,
              (err: unknown) => {
                if (err instanceof WorkflowNotFoundError) return undefined;
                throw err;
              },
            )
          : undefined;
        if (!handle || memo?.restoreId !== id) throw new BackupError('not_found', `restore ${id} not found`);
        return { id, status: 'running', progress: await liveProgress(handle, restoreProgressQuery) };
      }
      const progress =
        row.status === 'running' && row.kind === 'restore'
          ? await liveProgress(
              deps.temporal.workflow.getHandle(restoreWorkflowId(restoreTarget(row.target_database, row.server))),
              restoreProgressQuery,
            )
          : null;
      return { ...restoreView(row), progress };
    },
  };
}

export type BackupService = ReturnType<typeof createBackupService>;
