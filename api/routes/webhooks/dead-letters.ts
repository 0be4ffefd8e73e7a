/** Dead letters: the open ones, redrive a batch, discard one. */
import { z } from '@hono/zod-openapi';
import { actorLabel } from '../../../lib/keys/scopes.js';
import { page } from '../../../lib/pagination.js';
import { discardDeadLetter, redriveDeadLetters, webhookServiceDeps } from '../../../lib/webhooks/service.js';
import { actorOf } from '../../auth.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import type { ApiDeps } from '../../deps.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { DateParam, IdParam, serviceError } from './shared.js';

export function deadLetterRoutes(deps: ApiDeps) {
  const router = newRouter();
  const { pool } = deps;
  const service = webhookServiceDeps(deps.config, pool, deps.temporal, deps.queues);

  router.openapi(
    route('read', {
      method: 'get',
      path: '/dead-letters',
      operationId: 'listDeadLetters',
      summary: 'Open dead letters, newest first',
      request: {
        query: z.object({
          endpointId: z.string().max(100).optional(),
          since: DateParam.optional(),
          until: DateParam.optional(),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(z.any(), 'A page of dead letters'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const key = cursorKey(q.cursor);
      const { rows } = await pool.query<{
        id: string;
        delivery_id: string;
        endpoint_id: string;
        event_type: string;
        reason: string;
        created_at: Date;
      }>(
        `SELECT id, delivery_id, endpoint_id, event_type, reason, created_at FROM opsflow.dead_letters
         WHERE resolved_at IS NULL AND ($1::text IS NULL OR endpoint_id = $1)
           AND ($2::timestamptz IS NULL OR created_at >= $2) AND ($3::timestamptz IS NULL OR created_at < $3)
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
         ORDER BY created_at DESC, id DESC LIMIT $6`,
        [q.endpointId ?? null, q.since ?? null, q.until ?? null, key?.at ?? null, key?.id ?? null, q.limit + 1],
      );
      const { items, nextCursor } = page(rows, q.limit, (r) => r.created_at);
      return c.json(
        {
          items: items.map((r) => ({
            id: r.id,
            deliveryId: r.delivery_id,
            endpointId: r.endpoint_id,
            eventType: r.event_type,
            reason: r.reason,
            createdAt: r.created_at.toISOString(),
          })),
          nextCursor,
        },
        200,
      );
    },
  );

  router.openapi(
    route('deliveries:redrive', {
      method: 'post',
      path: '/dead-letters/redrive',
      operationId: 'redriveDeadLetters',
      summary: 'Redrive open dead letters (oldest first) of enabled endpoints',
      request: {
        body: {
          required: false,
          ...json(
            z
              .object({
                endpointId: z.string().max(100).optional(),
                since: DateParam.optional(),
                until: DateParam.optional(),
                limit: z.number().int().min(1).max(1000).default(50),
              })
              .strict(),
          ),
        },
      },
      responses: {
        200: { description: 'How many were redriven', ...json(z.object({ redriven: z.number(), failed: z.number() })) },
      },
    }),
    async (c) => {
      // The body is optional: without one, redrive the 50 oldest.
      const body =
        (c.req.valid('json') as Partial<{ endpointId: string; since: Date; until: Date; limit: number }> | undefined) ??
        {};
      return c.json(
        await redriveDeadLetters(service, { ...body, limit: body.limit ?? 50, by: actorLabel(actorOf(c)) }),
        200,
      );
    },
  );

  router.openapi(
    route('deliveries:redrive', {
      method: 'post',
      path: '/dead-letters/{id}/discard',
      operationId: 'discardDeadLetter',
      summary: 'Discard a dead letter: its delivery is closed as discarded',
      request: { params: IdParam },
      responses: {
        200: { description: 'Discarded', ...json(z.object({ id: z.string(), status: z.literal('discarded') })) },
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      await discardDeadLetter(pool, id, actorLabel(actorOf(c))).catch(serviceError);
      return c.json({ id, status: 'discarded' as const }, 200);
    },
  );

  return router;
}
