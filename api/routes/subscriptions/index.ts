/**
 * Subscription API: parse, check scope, call the subscription service (lib/subscriptions/service.ts), answer.
 * PUT creates with a plain start (answered without waiting for a worker) and updates with update-with-start;
 * reads of one subscription come from its workflow, lists from PostgreSQL.
 */
import { z } from '@hono/zod-openapi';
import { parseDuration } from '../../../lib/durations.js';
import type { SubscriptionService } from '../../../lib/subscriptions/service.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { tenantScope } from '../../auth.js';
import { route } from '../../scoped.js';
import {
  IdParam,
  Instant,
  PutBody,
  Subscription,
  SubscriptionListItem,
  SubscriptionStatus,
  TenantQuery,
  toDetails,
} from './schemas.js';

export function subscriptionRoutes(subscriptions: SubscriptionService, defaultTimezone: string) {
  const router = newRouter();

  router.openapi(
    route('subscriptions:write', {
      method: 'put',
      path: '/subscriptions/{id}',
      operationId: 'upsertSubscription',
      summary: 'Create (201) or update (200) a subscription; its workflow is started or updated atomically',
      request: { params: IdParam, body: { required: true, ...json(PutBody) } },
      responses: {
        200: { description: 'Updated', ...json(Subscription) },
        201: { description: 'Created', ...json(Subscription) },
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      tenantScope(c, body.tenantId); // a tenant key writes its own tenant's subscriptions only (403)
      const { view, created } = await subscriptions.put(id, toDetails(body, defaultTimezone), {
        allowPastExpiry: body.allowPastExpiry,
      });
      return created ? c.json(view, 201) : c.json(view, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/subscriptions/{id}',
      operationId: 'getSubscription',
      summary: 'Status, expiry, reminders sent and the next action with its time (from the workflow)',
      request: { params: IdParam, query: TenantQuery },
      responses: { 200: { description: 'The subscription', ...json(Subscription) } },
    }),
    async (c) =>
      c.json(await subscriptions.get(c.req.valid('param').id, tenantScope(c, c.req.valid('query').tenantId)), 200),
  );

  router.openapi(
    route('subscriptions:write', {
      method: 'post',
      path: '/subscriptions/{id}/renew',
      operationId: 'renewSubscription',
      summary: 'Renew to a later expiry: timers re-armed, no reminder of the old period afterwards',
      request: {
        params: IdParam,
        query: TenantQuery,
        body: { required: true, ...json(z.object({ expiresAt: Instant }).strict()) },
      },
      responses: { 200: { description: 'Renewed', ...json(Subscription) } },
    }),
    async (c) => {
      const expiresAt = new Date(c.req.valid('json').expiresAt).toISOString();
      const tenant = tenantScope(c, c.req.valid('query').tenantId);
      return c.json(await subscriptions.renew(c.req.valid('param').id, expiresAt, tenant), 200);
    },
  );

  router.openapi(
    route('subscriptions:write', {
      method: 'post',
      path: '/subscriptions/{id}/cancel',
      operationId: 'cancelSubscription',
      summary: 'Cancel: no further reminders, status canceled',
      request: {
        params: IdParam,
        query: TenantQuery,
        body: { required: false, ...json(z.object({ reason: z.string().max(500).optional() }).strict()) },
      },
      responses: { 200: { description: 'Canceled', ...json(Subscription) } },
    }),
    async (c) => {
      const body = (c.req.valid('json') as { reason?: string } | undefined) ?? {};
      const tenant = tenantScope(c, c.req.valid('query').tenantId);
      return c.json(await subscriptions.cancel(c.req.valid('param').id, body.reason, tenant), 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/subscriptions',
      operationId: 'listSubscriptions',
      summary: 'List subscriptions (from PostgreSQL), soonest expiry first',
      request: {
        query: z.object({
          status: SubscriptionStatus.optional(),
          tenantId: z.string().max(255).optional(),
          expiringWithin: z
            .string()
            .optional()
            .transform((v, ctx) => {
              if (v === undefined) return undefined;
              const ms = parseDuration(v);
              if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'must be a duration such as 24h or 7d' });
              return ms;
            }),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(SubscriptionListItem, 'A page'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const filter = { status: q.status, tenantId: tenantScope(c, q.tenantId), expiringWithinMs: q.expiringWithin };
      return c.json(await subscriptions.list(filter, { after: cursorKey(q.cursor), limit: q.limit }), 200);
    },
  );

  return router;
}
