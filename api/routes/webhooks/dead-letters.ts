/** Dead letters: the open ones, redrive a batch, discard one. */
import { z } from '@hono/zod-openapi';
import { actorLabel } from '../../../lib/keys/scopes.js';
import { deadLetterPage } from '../../../lib/webhooks/deliveries.js';
import { discardDeadLetter } from '../../../lib/webhooks/dead-letters.js';
import { redriveDeadLetters } from '../../../lib/webhooks/redrive.js';
import { webhookServiceDeps } from '../../../lib/webhooks/service.js';
import { waitLonger } from '../../../lib/temporal-deadline.js';
import { actorOf, keyTenant } from '../../auth.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import type { ApiDeps } from '../../deps.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { DateParam, DeadLetter, IdParam } from './shared.js';

/** How long a redrive's restarts may wait for Temporal, together. */
const REDRIVE_WAIT_MS = 60_000;

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
      responses: pageResponse(DeadLetter, 'A page of dead letters'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const page = await deadLetterPage(
        pool,
        { endpointId: q.endpointId, since: q.since, until: q.until, tenant: keyTenant(c) },
        { after: cursorKey(q.cursor), limit: q.limit },
      );
      return c.json(page, 200);
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
      // Up to 1,000 restarts: more than the request's 10 s Temporal backstop may cover on a busy server.
      const answerBy = Date.now() + REDRIVE_WAIT_MS;
      const result = await waitLonger(deps, REDRIVE_WAIT_MS, () =>
        redriveDeadLetters(
          service,
          { ...body, limit: body.limit ?? 50, by: actorLabel(actorOf(c)), tenant: keyTenant(c) },
          { answerBy },
        ),
      );
      return c.json(result, 200);
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
      await discardDeadLetter(pool, id, actorLabel(actorOf(c)), keyTenant(c));
      return c.json({ id, status: 'discarded' as const }, 200);
    },
  );

  return router;
}
