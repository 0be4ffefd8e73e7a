/** Recovers: send an endpoint's deliveries of a time window again, as one tracked run (lib/webhooks/recover.ts). */
import { z } from '@hono/zod-openapi';
import { actorLabel } from '../../../lib/keys/scopes.js';
import { cancelRecover, getRecover, recoverPage, RECOVER_WHICH, startRecover } from '../../../lib/webhooks/recover.js';
import { webhookServiceDeps } from '../../../lib/webhooks/service.js';
import { actorOf, keyTenant } from '../../auth.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import type { ApiDeps } from '../../deps.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { DateParam, IdParam } from './shared.js';

const Recover = z
  .object({
    id: z.string(),
    endpointId: z.string(),
    tenantId: z.string().nullable(),
    since: z.string(),
    until: z.string().openapi({ description: 'The end of the window (the time of the request when not given)' }),
    status: z.enum(RECOVER_WHICH),
    requestedBy: z.string(),
    state: z.enum(['running', 'finished', 'failed', 'canceled']),
    total: z.number().int().openapi({ description: 'Deliveries the window held when the recover was asked for' }),
    resent: z.number().int().openapi({ description: 'Sent again so far' }),
    error: z.string().nullable().openapi({ description: 'Why it failed or who canceled it' }),
    createdAt: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .openapi('Recover');

const RecoverRequest = z
  .object({
    since: DateParam,
    until: DateParam.optional(),
    status: z.enum(RECOVER_WHICH).default('failed').openapi({
      description:
        'failed (default): the dead-lettered and still-retrying deliveries of the window; all: the delivered and discarded ones too',
    }),
  })
  .strict()
  .openapi('RecoverRequest');

export function recoverRoutes(deps: ApiDeps) {
  const router = newRouter();
  const { pool } = deps;
  const service = webhookServiceDeps(deps.config, pool, deps.temporal, deps.queues);

  router.openapi(
    route('deliveries:redrive', {
      method: 'post',
      path: '/endpoints/{id}/recover',
      operationId: 'recoverEndpoint',
      summary:
        "Send the endpoint's deliveries of a window again (failed ones by default), as one tracked run paced by its rate limit",
      request: { params: IdParam, body: { required: true, ...json(RecoverRequest) } },
      responses: { 202: { description: 'The recover, running', ...json(Recover) } },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const recover = await startRecover(service, {
        endpointId: c.req.valid('param').id,
        since: body.since,
        until: body.until,
        which: body.status,
        by: actorLabel(actorOf(c)),
        tenant: keyTenant(c),
        maxDeliveries: deps.config.webhooks.recoverMaxDeliveries,
      });
      return c.json(recover, 202);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/recovers',
      operationId: 'listRecovers',
      summary: 'Recovers, newest first',
      request: { query: z.object({ endpointId: z.string().max(100).optional(), cursor: Cursor, limit: Limit }) },
      responses: pageResponse(Recover, 'A page of recovers'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const page = await recoverPage(
        pool,
        { endpointId: q.endpointId, tenant: keyTenant(c) },
        { after: cursorKey(q.cursor), limit: q.limit },
      );
      return c.json(page, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/recovers/{id}',
      operationId: 'getRecover',
      summary: 'One recover and its progress',
      request: { params: IdParam },
      responses: { 200: { description: 'The recover', ...json(Recover) } },
    }),
    async (c) => c.json(await getRecover(pool, c.req.valid('param').id, keyTenant(c)), 200),
  );

  router.openapi(
    route('deliveries:redrive', {
      method: 'post',
      path: '/recovers/{id}/cancel',
      operationId: 'cancelRecover',
      summary: 'Stop a running recover before its next batch (what it sent stays sent)',
      request: { params: IdParam },
      responses: { 200: { description: 'The recover, canceled', ...json(Recover) } },
    }),
    async (c) => c.json(await cancelRecover(pool, c.req.valid('param').id, actorLabel(actorOf(c)), keyTenant(c)), 200),
  );

  return router;
}
