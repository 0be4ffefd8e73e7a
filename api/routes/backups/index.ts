/** Backup API: start a run now, list the catalog, read one run (live progress while it runs); restores. */
import { z } from '@hono/zod-openapi';
import { DATABASE_NAME } from '../../../lib/backups/databases.js';
import { createBackupService } from '../../../lib/backups/service.js';
import type { ApiDeps } from '../../deps.js';
import { actorOf, asActor } from '../../auth.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { Backup, BackupDetail, Restore, RestoreDetail } from './schemas.js';

const Id = z.object({ id: z.string().min(1).max(200) });

export function backupRoutes(deps: ApiDeps) {
  const router = newRouter();
  const backups = createBackupService(deps);

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
      return c.json({ id: await backups.start(body.database) }, 202);
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
      responses: pageResponse(Backup, 'A page'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const page = await backups.list(
        { database: q.database, status: q.status },
        { after: cursorKey(q.cursor), limit: q.limit },
      );
      return c.json(page, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/backups/{id}',
      operationId: 'getBackup',
      summary: 'One run: current step while running (a query), then the catalog row with its verification table',
      request: { params: Id },
      responses: { 200: { description: 'The run', ...json(BackupDetail) } },
    }),
    async (c) => c.json(await backups.get(c.req.valid('param').id), 200),
  );

  router.openapi(
    route('backups:restore', {
      method: 'post',
      path: '/backups/{id}/restore',
      operationId: 'restoreBackup',
      summary:
        "Restore a verified backup into a database on its source server, or with server onto a RESTORE_SERVERS entry (the backup's roles first); confirm must repeat the target, a non-empty target needs overwrite",
      request: {
        params: Id,
        body: {
          required: true,
          ...json(
            z
              .object({
                targetDatabase: z.string().regex(DATABASE_NAME, 'a plain database name (letters, digits, _)'),
                confirm: z.string().max(63),
                overwrite: z.boolean().default(false),
                server: z.string().max(31).optional().openapi({
                  description:
                    "A RESTORE_SERVERS entry (disaster recovery): the backup's roles are created there first if missing",
                }),
              })
              .strict(),
          ),
        },
      },
      responses: { 202: { description: 'Started', ...json(z.object({ id: z.string(), workflowId: z.string() })) } },
    }),
    async (c) => {
      const started = await backups.restore(c.req.valid('param').id, c.req.valid('json'), asActor(actorOf(c)));
      return c.json(started, 202);
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
          kind: z.enum(['restore', 'drill', 'dr-drill']).optional(),
          database: z.string().max(63).optional(),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(Restore, 'A page'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const page = await backups.listRestores(
        { kind: q.kind, database: q.database },
        { after: cursorKey(q.cursor), limit: q.limit },
      );
      return c.json(page, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/restores/{id}',
      operationId: 'getRestore',
      summary: 'One restore or drill: live step while running, then the row with its verification table',
      request: { params: Id },
      responses: { 200: { description: 'The restore', ...json(RestoreDetail) } },
    }),
    async (c) => c.json(await backups.getRestore(c.req.valid('param').id), 200),
  );

  return router;
}
