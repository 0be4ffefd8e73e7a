/** Publishing an event (one delivery per enabled endpoint subscribed to its type), and finding what was sent. */
import { z } from '@hono/zod-openapi';
import { eventDetail, eventPage } from '../../../lib/webhooks/events.js';
import type { EventCatalogue } from '../../../lib/webhooks/event-catalogue.js';
import { checkCallerEvent } from '../../../lib/webhooks/ops-events.js';
import { publishEvent, webhookServiceDeps } from '../../../lib/webhooks/service.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import type { ApiDeps } from '../../deps.js';
import { newRouter } from '../../router.js';
import { keyTenant, tenantScope } from '../../auth.js';
import { route } from '../../scoped.js';
import {
  Channels,
  DateParam,
  Event,
  EventDetail,
  EventType,
  IdParam,
  MAX_PAYLOAD_DEPTH,
  nestingDepth,
  RetrySchedule,
} from './shared.js';

export { MAX_PAYLOAD_DEPTH, nestingDepth };

const EventCreate = z
  .object({
    type: EventType,
    payload: z
      .unknown()
      .refine((v) => v !== undefined, 'required')
      .refine((v) => nestingDepth(v) <= MAX_PAYLOAD_DEPTH, `nested deeper than ${MAX_PAYLOAD_DEPTH} levels`),
    idempotencyKey: z.string().min(1).max(255).optional(),
    tenantId: z.string().min(1).max(255).optional(),
    channels: Channels.optional().openapi({
      description:
        'Reaches endpoints without channels and those with one of these (an endpoint with channels takes no event without one)',
    }),
    retrySchedule: RetrySchedule.optional().openapi({
      description:
        'Overrides the endpoints\' retry schedules for this event\'s deliveries (same grammar, e.g. ["0s","30s","5m"]); kept for redrives',
    }),
  })
  .strict()
  .openapi('EventCreate');

/** How long POST /v1/events waits for its deliveries' workflow starts before answering 202 anyway. */
export const EVENT_START_WAIT_MS = 800;

export function eventRoutes(deps: ApiDeps, catalogue: EventCatalogue) {
  const router = newRouter();
  const service = webhookServiceDeps(deps.config, deps.pool, deps.temporal, deps.queues);

  router.openapi(
    route('events:publish', {
      method: 'post',
      path: '/events',
      operationId: 'publishEvent',
      summary: 'Publish an event: one delivery per enabled endpoint subscribed to its type',
      description:
        "opsflow's own event namespaces are reserved (403): opsflow.*, backup.*, restore.*, deploy.*, endpoint.*, dlq.*, subscription.*, subscriptions.*; so are idempotency keys starting with opsflow:. A type in the event catalogue with a schema is validated against it (422 naming the first problem); a deprecated one is published with a warning.",
      request: { body: { required: true, ...json(EventCreate) } },
      responses: {
        202: {
          description: 'Accepted; deliveries run as workflows',
          ...json(
            z.object({
              eventId: z.string(),
              deliveries: z.array(z.object({ id: z.string(), endpointId: z.string() })),
              warnings: z.array(z.string()).optional().openapi({
                description:
                  'Present when the event type is deprecated in the catalogue (the event is published all the same)',
              }),
            }),
          ),
        },
      },
    }),
    async (c) => {
      const { retrySchedule, ...body } = c.req.valid('json');
      checkCallerEvent(body);
      // A catalogued type with a schema: the payload must meet it (422 naming the first problem, nothing stored).
      const { warnings } = await catalogue.check(body.type, body.payload);
      // Never longer than a second for the starts: the rows are committed, so the event is accepted whatever
      // Temporal does next (a server that dies mid-request made this wait for the 10 s backstop).
      const own = keyTenant(c);
      const result = await publishEvent(
        service,
        {
          ...body,
          tenantId: tenantScope(c, body.tenantId),
          tenantOnly: own !== undefined,
          retryScheduleMs: retrySchedule,
        },
        { answerWithinMs: EVENT_START_WAIT_MS, log: deps.log },
      );
      if (result.startFailed) {
        // Accepted all the same: the rows are committed and the workers' reconciler starts what is missing.
        deps.log.warn(
          { err: result.startFailed, eventId: result.eventId, requestId: c.get('requestId') },
          'event accepted; some delivery workflows could not be started now and will be started by the reconciler',
        );
      }
      return c.json(
        { eventId: result.eventId, deliveries: result.deliveries, ...(warnings.length > 0 ? { warnings } : {}) },
        202,
      );
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/events',
      operationId: 'listEvents',
      summary: 'List published events, newest first, each with its deliveries by status',
      request: {
        query: z.object({
          type: z
            .string()
            .max(130)
            .regex(/^[A-Za-z0-9_.:-]+(\.\*)?$/, 'an event type, or a prefix ending in .* (invoice.*)')
            .optional()
            .openapi({ description: 'An exact type, or every type under a prefix: `invoice.*`' }),
          tenantId: z.string().min(1).max(255).optional(),
          since: DateParam.optional().openapi({ description: 'Published at or after' }),
          until: DateParam.optional().openapi({ description: 'Published before' }),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(Event, 'A page of events'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const page = await eventPage(
        deps.pool,
        { type: q.type, tenant: tenantScope(c, q.tenantId), since: q.since, until: q.until },
        { after: cursorKey(q.cursor), limit: q.limit },
      );
      return c.json(page, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/events/{id}',
      operationId: 'getEvent',
      summary: 'One event: its payload and every delivery it made',
      request: { params: IdParam },
      responses: { 200: { description: 'The event', ...json(EventDetail) } },
    }),
    async (c) => c.json(await eventDetail(deps.pool, c.req.valid('param').id, keyTenant(c)), 200),
  );

  return router;
}
