/** Backup API: start a run now, list the catalog, read one run (live progress while it runs). */
import { z } from '@hono/zod-openapi';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type QueryDefinition } from '@temporalio/common';
import { DATABASE_NAME, isOpsflowDatabase, targetState } from '../../lib/backups/databases.js';
import { BackupDatabase, OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import {
  BACKUP_WORKFLOW,
  backupWorkflowId,
  progressQuery,
  RESTORE_WORKFLOW,
  restoreCatalogId,
  restoreProgressQuery,
  restoreWorkflowId,
  type RestoreInput,
} from '../../lib/backups/contract.js';
import type { ApiDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { catalogPage } from '../../lib/pagination.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../pagination.js';
import { newRouter } from '../router.js';
import { actorOf, asActor } from '../auth.js';
import { route } from '../scoped.js';

interface BackupRow {
  id: string;
  database: string;
  status: string;
  reason: string | null;
  started_at: Date;
  finished_at: Date | null;
  steps: unknown;
  size_bytes: string | null;
  sha256: string | null;
  locations: unknown;
  table_counts: unknown;
  verification: unknown;
  deleted_from: string[];
}

interface RestoreRow {
  id: string;
  kind: string;
  backup_id: string | null;
  database: string;
  target_database: string;
  status: string;
  reason: string | null;
  started_at: Date;
  finished_at: Date | null;
  source: unknown;
  verification: unknown;
  requested_by: string | null;
  requested_by_key: string | null;
}

const restoreJson = (r: RestoreRow) => ({
  id: r.id,
  kind: r.kind,
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
});

/** The running step (a query) and the long step's heartbeat (bytes so far), or null once the run ended. */
async function liveProgress<T extends object>(handle: WorkflowHandle, query: QueryDefinition<T>) {
  try {
    const description = await handle.describe();
    if (description.status.name !== 'RUNNING') return null;
    const progress = await handle.query(query);
    const beat = description.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
    const heartbeat = beat ? defaultPayloadConverter.fromPayload<Record<string, unknown>>(beat) : null;
    return { ...progress, ...(heartbeat ?? {}) };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

const rowJson = (r: BackupRow) => ({
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
  verification: r.verification,
  deletedFrom: r.deleted_from,
});

export function backupRoutes(deps: ApiDeps) {
  const router = newRouter();
  const databases = deps.config.backups.databases.map((d) => d.name);

  router.openapi(
    route('backups:run', {
      method: 'post',
      path: '/backups',
      operationId: 'startBackup',
      summary: 'Back up a database now (default: the first configured)',
      request: { body: { required: false, ...json(z.object({ database: z.string().max(63).optional() }).strict()) } },
      responses: { 202: { description: 'Started', ...json(z.object({ id: z.string() })) } },
    }),
    async (c) => {
      const body = (c.req.valid('json') as { database?: string } | undefined) ?? {};
      const database = body.database ?? databases[0]!;
      if (!databases.includes(database)) {
        throw new ApiError(
          422,
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
        throw new ApiError(409, 'conflict', `a backup of ${database} is already running: ${r.workflowId}`, {
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
      return c.json({ id }, 202);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/backups',
      operationId: 'listBackups',
      summary: 'The backup catalog, newest first',
      request: {
        query: z.object({
          database: z.string().max(63).optional(),
          status: z.enum(['running', 'verified', 'failed']).optional(),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(z.any(), 'A page'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const { items, nextCursor } = await catalogPage<BackupRow>(
        deps.pool,
        'opsflow.backups',
        { database: q.database, status: q.status },
        { after: cursorKey(q.cursor), limit: q.limit },
      );
      return c.json({ items: items.map(rowJson), nextCursor }, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/backups/{id}',
      operationId: 'getBackup',
      summary: 'One run: current step while running (a query), then the catalog row with its verification table',
      request: { params: z.object({ id: z.string().min(1).max(200) }) },
      responses: { 200: { description: 'The run', ...json(z.any()) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { rows } = await deps.pool.query<BackupRow>('SELECT * FROM opsflow.backups WHERE id = $1', [id]);
      const progress = await liveProgress(deps.temporal.workflow.getHandle(id), progressQuery);
      if (!rows[0] && !progress) throw new ApiError(404, 'not_found', `backup ${id} not found`);
      return c.json({ ...(rows[0] ? rowJson(rows[0]) : { id, status: 'running' }), progress }, 200);
    },
  );

  router.openapi(
    route('backups:restore', {
      method: 'post',
      path: '/backups/{id}/restore',
      operationId: 'restoreBackup',
      summary:
        'Restore a verified backup into a database on its source server; confirm must repeat the target, a non-empty target needs overwrite',
      request: {
        params: z.object({ id: z.string().min(1).max(200) }),
        body: {
          required: true,
          ...json(
            z
              .object({
                targetDatabase: z.string().regex(DATABASE_NAME, 'a plain database name (letters, digits, _)'),
                confirm: z.string().max(63),
                overwrite: z.boolean().default(false),
              })
              .strict(),
          ),
        },
      },
      responses: { 202: { description: 'Started', ...json(z.object({ id: z.string(), workflowId: z.string() })) } },
    }),
    async (c) => {
      const { id: backupId } = c.req.valid('param');
      const body = c.req.valid('json');
      if (body.confirm !== body.targetDatabase) {
        throw new ApiError(422, 'unprocessable', 'confirm must repeat targetDatabase exactly');
      }
      const { rows } = await deps.pool.query<BackupRow>('SELECT * FROM opsflow.backups WHERE id = $1', [backupId]);
      const backup = rows[0];
      if (!backup) throw new ApiError(404, 'not_found', `backup ${backupId} not found`);
      if (backup.status !== 'verified') {
        throw new ApiError(
          409,
          'conflict',
          `backup ${backupId} is ${backup.status}; only verified backups are restored`,
        );
      }
      if (!databases.includes(backup.database)) {
        throw new ApiError(
          422,
          'unprocessable',
          `database ${backup.database} is no longer configured (BACKUP_DATABASE_URLS)`,
        );
      }
      const server = { database: backup.database };
      if (await isOpsflowDatabase(deps.config, server, body.targetDatabase)) {
        throw new ApiError(
          422,
          'unprocessable',
          `${body.targetDatabase} holds opsflow's own state; restore it elsewhere`,
        );
      }
      if (!body.overwrite && (await targetState(deps.config, server, body.targetDatabase)) === 'non-empty') {
        throw new ApiError(
          409,
          'conflict',
          `database ${body.targetDatabase} is not empty; add overwrite: true to replace it`,
        );
      }
      const input: RestoreInput = {
        id: restoreCatalogId(body.targetDatabase, new Date()),
        backupId,
        targetDatabase: body.targetDatabase,
        overwrite: body.overwrite,
        requester: asActor(actorOf(c)),
      };
      const workflowId = restoreWorkflowId(body.targetDatabase);
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
          staticSummary: `restore ${backupId} into ${body.targetDatabase}${body.overwrite ? ' (overwrite)' : ''}`,
          // Lets GET /v1/restores/:id answer for this run before its first activity has written the row.
          memo: { restoreId: input.id },
        });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) {
          throw new ApiError(409, 'conflict', `a restore into ${body.targetDatabase} is already running`, {
            workflowId,
          });
        }
        throw err;
      }
      return c.json({ id: input.id, workflowId }, 202);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/restores',
      operationId: 'listRestores',
      summary: 'Restores and restore drills, newest first',
      request: {
        query: z.object({
          kind: z.enum(['restore', 'drill']).optional(),
          database: z.string().max(63).optional(),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(z.any(), 'A page'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const { items, nextCursor } = await catalogPage<RestoreRow>(
        deps.pool,
        'opsflow.restores',
        { kind: q.kind, database: q.database },
        { after: cursorKey(q.cursor), limit: q.limit },
      );
      return c.json({ items: items.map(restoreJson), nextCursor }, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/restores/{id}',
      operationId: 'getRestore',
      summary: 'One restore or drill: live step while running, then the row with its verification table',
      request: { params: z.object({ id: z.string().min(1).max(200) }) },
      responses: { 200: { description: 'The restore', ...json(z.any()) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { rows } = await deps.pool.query<RestoreRow>('SELECT * FROM opsflow.restores WHERE id = $1', [id]);
      const row = rows[0];
      if (!row) {
        // Accepted but not recorded yet (the run's first step writes the row): the run itself answers.
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
        if (!handle || memo?.restoreId !== id) throw new ApiError(404, 'not_found', `restore ${id} not found`);
        return c.json({ id, status: 'running', progress: await liveProgress(handle, restoreProgressQuery) }, 200);
      }
      const progress =
        row.status === 'running' && row.kind === 'restore'
          ? await liveProgress(
              deps.temporal.workflow.getHandle(restoreWorkflowId(row.target_database)),
              restoreProgressQuery,
            )
          : null;
      return c.json({ ...restoreJson(row), progress }, 200);
    },
  );

  return router;
}
