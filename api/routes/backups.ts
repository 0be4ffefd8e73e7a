/** Backup API: start a run now, list the catalog, read one run (live progress while it runs). */
import { createRoute, z } from '@hono/zod-openapi';
import { WorkflowNotFoundError } from '@temporalio/client';
import { page } from '../../lib/pagination.js';
import { BackupDatabase, OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import { BACKUP_WORKFLOW, backupWorkflowId, progressQuery } from '../../workflows/backups/definitions.js';
import type { ApiDeps } from '../app.js';
import { ApiError } from '../errors.js';
import { Cursor, cursorKey, json, Limit, pageResponse, security } from '../pagination.js';
import { newRouter } from '../router.js';

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
    createRoute({
      method: 'post',
      path: '/backups',
      summary: 'Back up a database now (default: the first configured)',
      security,
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
    createRoute({
      method: 'get',
      path: '/backups',
      summary: 'The backup catalog, newest first',
      security,
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
      const key = cursorKey(q.cursor);
      const { rows } = await deps.pool.query<BackupRow>(
        `SELECT * FROM opsflow.backups WHERE ($1::text IS NULL OR database = $1) AND ($2::text IS NULL OR status = $2)
           AND ($3::timestamptz IS NULL OR (started_at, id) < ($3, $4))
         ORDER BY started_at DESC, id DESC LIMIT $5`,
        [q.database ?? null, q.status ?? null, key?.at ?? null, key?.id ?? null, q.limit + 1],
      );
      const { items, nextCursor } = page(rows, q.limit, (r) => r.started_at);
      return c.json({ items: items.map(rowJson), nextCursor }, 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/backups/{id}',
      summary: 'One run: current step while running (a query), then the catalog row with its verification table',
      security,
      request: { params: z.object({ id: z.string().min(1).max(200) }) },
      responses: { 200: { description: 'The run', ...json(z.any()) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { rows } = await deps.pool.query<BackupRow>('SELECT * FROM opsflow.backups WHERE id = $1', [id]);
      let progress: unknown = null;
      try {
        const handle = deps.temporal.workflow.getHandle(id);
        if ((await handle.describe()).status.name === 'RUNNING') progress = await handle.query(progressQuery);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      if (!rows[0] && !progress) throw new ApiError(404, 'not_found', `backup ${id} not found`);
      return c.json({ ...(rows[0] ? rowJson(rows[0]) : { id, status: 'running' }), progress }, 200);
    },
  );

  return router;
}
