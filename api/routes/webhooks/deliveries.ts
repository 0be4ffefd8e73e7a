/** Deliveries: the PostgreSQL list, one delivery with its attempts and live state, attempt now. */
import { z } from '@hono/zod-openapi';
import { WorkflowNotFoundError } from '@temporalio/client';
import { actorLabel } from '../../../lib/keys/scopes.js';
import { page } from '../../../lib/pagination.js';
import { redriveDelivery, webhookServiceDeps } from '../../../lib/webhooks/service.js';
import { deliveryWorkflowId, liveStateQuery, type DeliveryLiveState } from '../../../lib/webhooks/contract.js';
import { actorOf } from '../../auth.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import type { ApiDeps } from '../../deps.js';
import { ApiError } from '../../errors.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { DateParam, EventType, IdParam, serviceError } from './shared.js';

export function deliveryRoutes(deps: ApiDeps) {
  const router = newRouter();
  const { pool } = deps;
  const service = webhookServiceDeps(deps.config, pool, deps.temporal, deps.queues);

  const DeliveryStatus = z.enum(['pending', 'retrying', 'delivered', 'dead_lettered', 'discarded']);

  interface DeliveryRow {
    id: string;
    event_id: string;
    endpoint_id: string;
    event_type: string;
    tenant_id: string | null;
    status: string;
    attempts: number;
    last_status_code: number | null;
    last_error: string | null;
    next_attempt_at: Date | null;
    delivered_at: Date | null;
    created_at: Date;
    updated_at: Date;
  }
  const deliveryJson = (d: DeliveryRow) => ({
    id: d.id,
    eventId: d.event_id,
    endpointId: d.endpoint_id,
    eventType: d.event_type,
    tenantId: d.tenant_id,
    status: d.status,
    attempts: d.attempts,
    lastStatusCode: d.last_status_code,
    lastError: d.last_error,
    nextAttemptAt: d.next_attempt_at?.toISOString() ?? null,
    deliveredAt: d.delivered_at?.toISOString() ?? null,
    createdAt: d.created_at.toISOString(),
    updatedAt: d.updated_at.toISOString(),
  });

  router.openapi(
    route('read', {
      method: 'get',
      path: '/deliveries',
      operationId: 'listDeliveries',
      summary: 'List deliveries, newest first',
      request: {
        query: z.object({
          status: DeliveryStatus.optional(),
          endpointId: z.string().max(100).optional(),
          eventType: EventType.optional(),
          since: DateParam.optional(),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(z.any(), 'A page of deliveries'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const key = cursorKey(q.cursor);
      const { rows } = await pool.query<DeliveryRow>(
        `SELECT * FROM opsflow.webhook_deliveries
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR endpoint_id = $2)
           AND ($3::text IS NULL OR event_type = $3) AND ($4::timestamptz IS NULL OR created_at >= $4)
           AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
         ORDER BY created_at DESC, id DESC LIMIT $7`,
        [
          q.status ?? null,
          q.endpointId ?? null,
          q.eventType ?? null,
          q.since ?? null,
          key?.at ?? null,
          key?.id ?? null,
          q.limit + 1,
        ],
      );
      const { items, nextCursor } = page(rows, q.limit, (r) => r.created_at);
      return c.json({ items: items.map(deliveryJson), nextCursor }, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/deliveries/{id}',
      operationId: 'getDelivery',
      summary: 'One delivery: live status, every attempt, next attempt time',
      request: { params: IdParam },
      responses: { 200: { description: 'The delivery', ...json(z.any()) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { rows } = await pool.query<DeliveryRow>('SELECT * FROM opsflow.webhook_deliveries WHERE id = $1', [id]);
      const d = rows[0];
      if (!d) throw new ApiError(404, 'not_found', `delivery ${id} not found`);
      const attempts = await pool.query<{
        attempt_no: number;
        started_at: Date;
        latency_ms: number;
        status_code: number | null;
        error: string | null;
        response_body: string | null;
        outcome: string;
      }>(
        `SELECT attempt_no, started_at, latency_ms, status_code, error, response_body, outcome
         FROM opsflow.webhook_attempts WHERE delivery_id = $1 ORDER BY attempt_no`,
        [id],
      );
      let live: DeliveryLiveState | null = null;
      const handle = deps.temporal.workflow.getHandle(deliveryWorkflowId(id));
      try {
        const description = await handle.describe();
        if (description.status.name === 'RUNNING') live = await handle.query(liveStateQuery);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      return c.json(
        {
          ...deliveryJson(d),
          nextAttemptAt: live?.nextAttemptAt ?? d.next_attempt_at?.toISOString() ?? null,
          live,
          attempts: attempts.rows.map((a) => ({
            attemptNo: a.attempt_no,
            at: a.started_at.toISOString(),
            statusCode: a.status_code,
            latencyMs: a.latency_ms,
            error: a.error,
            responseBody: a.response_body,
            outcome: a.outcome,
          })),
        },
        200,
      );
    },
  );

  router.openapi(
    route('deliveries:redrive', {
      method: 'post',
      path: '/deliveries/{id}/retry',
      operationId: 'retryDelivery',
      summary: 'Attempt now: cuts a retry wait, or redrives a finished delivery with the same webhook-id',
      request: { params: IdParam },
      responses: {
        202: { description: 'Redriven', ...json(z.object({ id: z.string(), status: z.literal('redriven') })) },
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      await redriveDelivery(service, id, actorLabel(actorOf(c))).catch(serviceError);
      return c.json({ id, status: 'redriven' as const }, 202);
    },
  );

  return router;
}
