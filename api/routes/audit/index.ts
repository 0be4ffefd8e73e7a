/**
 * The audit log as the API reads it: who did what through the API and the console, newest first, filtered by
 * actor, action, resource (exact, or a prefix ending in `*`), outcome and time; keyset pages. Scope `audit:read`.
 */
import { z } from '@hono/zod-openapi';
import { AUDIT_OUTCOMES, auditPage } from '../../../lib/audit/log.js';
import type { ApiDeps } from '../../deps.js';
import { ApiError } from '../../errors.js';
import { cursorKey, Cursor, Limit, pageResponse } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';

const When = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

export const AuditRecord = z
  .object({
    id: z.string(),
    at: z.string(),
    actor: z
      .object({ keyId: z.string(), keyName: z.string(), tenantId: z.string().nullable() })
      .nullable()
      .openapi({ description: 'The key that acted (null: a console login that matched no key)' }),
    action: z.string().openapi({ description: 'The operation (its operationId), or consoleLogin / consoleLogout' }),
    resource: z.string().nullable().openapi({ description: 'What it acted on: endpoints/ep_…, deploys/…' }),
    outcome: z.enum(AUDIT_OUTCOMES).openapi({
      description:
        'pending: written before the request changed anything and not completed — its API process died before it answered, so the change may or may not have been made',
    }),
    status: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'The HTTP status the request was answered with (null while pending)' }),
    via: z.enum(['api', 'console', 'portal']),
    requestId: z.string().openapi({ description: 'Finds the request in the logs (X-Request-Id)' }),
    address: z.string().nullable(),
    detail: z
      .record(z.string(), z.string())
      .nullable()
      .openapi({ description: 'The error code of a refusal, or the id a request made beside its resource' }),
  })
  .openapi('AuditRecord');

export function auditRoutes(deps: ApiDeps) {
  const router = newRouter();
  router.openapi(
    route('audit:read', {
      method: 'get',
      path: '/audit',
      operationId: 'listAudit',
      summary: 'The audit log: who did what, newest first',
      request: {
        query: z.object({
          actor: z.string().max(100).optional().openapi({ description: 'A key id' }),
          tenant: z.string().max(255).optional().openapi({ description: "Only tenant keys' actions, of this tenant" }),
          action: z.string().max(100).optional().openapi({ description: 'An operationId, e.g. createEndpoint' }),
          resource: z
            .string()
            .max(300)
            .optional()
            .openapi({ description: 'A resource (endpoints/ep_…), or a prefix of one ending in * (endpoints/*)' }),
          outcome: z.enum(AUDIT_OUTCOMES).optional(),
          since: When.optional(),
          until: When.optional(),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(AuditRecord, 'A page of audit records'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      if (q.since && q.until && q.since >= q.until) {
        throw new ApiError(422, 'unprocessable', 'since must be before until', [
          { path: 'since', message: 'not before until' },
        ]);
      }
      const page = await auditPage(
        deps.pool,
        {
          actor: q.actor,
          tenant: q.tenant,
          action: q.action,
          resource: q.resource,
          outcome: q.outcome,
          since: q.since,
          until: q.until,
        },
        { cursor: cursorKey(q.cursor), limit: q.limit },
      );
      return c.json(page, 200);
    },
  );
  return router;
}
