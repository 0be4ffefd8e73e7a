/** Deliveries: the PostgreSQL list, one delivery with its attempts and live state, attempt now. */
import { z } from '@hono/zod-openapi';
import { actorLabel } from '../../../lib/keys/scopes.js';
import { deliveryDetail, deliveryPage } from '../../../lib/webhooks/deliveries.js';
import { redriveDelivery } from '../../../lib/webhooks/redrive.js';
import { webhookServiceDeps } from '../../../lib/webhooks/service.js';
import { actorOf, keyTenant } from '../../auth.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import type { ApiDeps } from '../../deps.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { DateParam, Delivery, DeliveryDetail, DeliveryStatus, EventType, IdParam } from './shared.js';

export function deliveryRoutes(deps: ApiDeps) {
  const router = newRouter();
  const { pool } = deps;
  const service = webhookServiceDeps(deps.config, pool, deps.temporal, deps.queues);

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
      responses: pageResponse(Delivery, 'A page of deliveries'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const page = await deliveryPage(
        pool,
        { status: q.status, endpointId: q.endpointId, eventType: q.eventType, since: q.since, tenant: keyTenant(c) },
        { after: cursorKey(q.cursor), limit: q.limit },
      );
      return c.json(page, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/deliveries/{id}',
      operationId: 'getDelivery',
      summary: 'One delivery: live status, every attempt, next attempt time',
      request: { params: IdParam },
      responses: { 200: { description: 'The delivery', ...json(DeliveryDetail) } },
    }),
    async (c) => c.json(await deliveryDetail(deps, c.req.valid('param').id, keyTenant(c)), 200),
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
      await redriveDelivery(service, id, actorLabel(actorOf(c)), keyTenant(c));
      return c.json({ id, status: 'redriven' as const }, 202);
    },
  );

  return router;
}
