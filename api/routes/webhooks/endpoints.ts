/** Webhook endpoints: create (the secret is shown once), list, get, change, delete, rotate the secret. */
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { actorLabel } from '../../../lib/keys/scopes.js';
import { ENDPOINT_ORDERINGS } from '../../../lib/webhooks/contract.js';
import { redactedView, type EndpointService } from '../../../lib/webhooks/endpoints.js';
import { ENDPOINT_FORMATS } from '../../../lib/webhooks/formats.js';
import { isValidSecret } from '../../../lib/webhooks/signing.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import { actorOf, keyTenant, tenantScope } from '../../auth.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { Channels, EventTypePattern, IdParam, PayloadFilter, RetrySchedule } from './shared.js';

const RoutingKey = z
  .string()
  .regex(/^[A-Za-z0-9]{32}$/, 'a PagerDuty integration (routing) key: 32 letters and digits');

const RateLimit = z.number().int().min(1).max(1000).openapi({
  description:
    'At most this many requests a second reach the endpoint, from every worker together; deliveries beyond it wait their turn (none is dropped or dead-lettered for it). Sends are spaced evenly and held to 91% of it, a margin for jitter between sending and arrival. Absent or null: unlimited',
});

const EndpointCreate = z
  .object({
    url: z.string().min(1).max(2048),
    description: z.string().max(500).optional(),
    eventTypes: z.array(EventTypePattern).min(1).max(100).optional().openapi({
      description: 'The event types it receives (all when absent): exact types, prefixes (`invoice.*`) or `*`',
    }),
    filter: PayloadFilter.optional(),
    channels: Channels.optional().openapi({
      description:
        'Only events published on one of these channels reach it (absent: any event, with or without channels)',
    }),
    secret: z.string().refine(isValidSecret, 'must be whsec_ followed by base64 of 24–64 bytes').optional(),
    retrySchedule: RetrySchedule.optional(),
    timeoutMs: z.number().int().min(1000).max(60_000).optional(),
    tenantId: z.string().min(1).max(255).optional().openapi({
      description:
        'The tenant whose events this endpoint receives (with events of no tenant only if it has none). Fixed once set',
    }),
    format: z.enum(ENDPOINT_FORMATS).optional().openapi({
      description:
        'What the endpoint receives: the Standard Webhooks envelope (default), a Slack incoming-webhook message, a PagerDuty Events API v2 event (only events that trigger or resolve a condition), or a Discord webhook message (one embed per event). Fixed once set',
    }),
    routingKey: RoutingKey.optional().openapi({
      description:
        "The PagerDuty integration's routing key; required with format pagerduty. Stored encrypted, never shown",
    }),
    ordering: z.enum(ENDPOINT_ORDERINGS).optional().openapi({
      description:
        'fifo: events are delivered one at a time, in the order they were published (the next waits until the one before is delivered or dead-lettered); none (default): concurrently. Fixed once set',
    }),
    rateLimitPerSecond: RateLimit.optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.format === 'pagerduty' && !b.routingKey) {
      ctx.addIssue({ code: 'custom', path: ['routingKey'], message: 'required with format pagerduty' });
    }
    if (b.routingKey && b.format !== 'pagerduty') {
      ctx.addIssue({ code: 'custom', path: ['routingKey'], message: 'only for format pagerduty' });
    }
  })
  .openapi('EndpointCreate');

const EndpointPatch = z
  .object({
    url: z.string().min(1).max(2048).optional(),
    description: z.string().max(500).nullable().optional(),
    eventTypes: z.array(EventTypePattern).min(1).max(100).nullable().optional(),
    channels: Channels.nullable().optional(),
    filter: PayloadFilter.nullable().optional(),
    retrySchedule: RetrySchedule.optional(),
    timeoutMs: z.number().int().min(1000).max(60_000).optional(),
    enabled: z.boolean().optional(),
    routingKey: RoutingKey.optional().openapi({ description: 'A new routing key (pagerduty endpoints only)' }),
    rateLimitPerSecond: RateLimit.nullable().optional(),
  })
  .strict()
  .openapi('EndpointPatch');

const Endpoint = z
  .object({
    id: z.string(),
    url: z.string().openapi({
      description:
        'The URL; a key without endpoints:write sees only its scheme and host (https://hooks.slack.com/…): the path of a Slack webhook is a credential',
    }),
    urlFingerprint: z.string().openapi({
      description: "sha256: and the first 16 hex digits of the URL's SHA-256, to compare with a URL you hold",
    }),
    description: z.string().nullable(),
    eventTypes: z.array(z.string()).nullable(),
    channels: z.array(z.string()).nullable(),
    filter: z
      .array(z.record(z.string(), z.unknown()))
      .nullable()
      .openapi({ description: 'Objects one of which an event’s payload must contain to reach it (null: any payload)' }),
    retrySchedule: z.array(z.string()),
    timeoutMs: z.number(),
    enabled: z.boolean(),
    disabledReason: z.string().nullable(),
    tenantId: z.string().nullable(),
    format: z.enum(ENDPOINT_FORMATS),
    ordering: z.enum(ENDPOINT_ORDERINGS),
    rateLimitPerSecond: z.number().int().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Endpoint');

/** Whether the key may see whole URLs: the scope that could point the endpoint elsewhere anyway. */
const mayWrite = (c: Context) => actorOf(c).scopes.has('endpoints:write');

/** Parse, check scope, call the endpoint service (lib/webhooks/endpoints.ts), answer. */
export function endpointRoutes(endpoints: EndpointService) {
  const router = newRouter();

  router.openapi(
    route('endpoints:write', {
      method: 'post',
      path: '/endpoints',
      operationId: 'createEndpoint',
      summary: 'Create a webhook endpoint',
      request: { body: { required: true, ...json(EndpointCreate) } },
      responses: {
        201: {
          description: 'Created; the only response besides a rotation that shows the secret',
          ...json(Endpoint.extend({ secret: z.string() })),
        },
      },
    }),
    async (c) => {
      const { retrySchedule, ...body } = c.req.valid('json');
      const tenantId = tenantScope(c, body.tenantId);
      return c.json(await endpoints.create({ ...body, tenantId, retryScheduleMs: retrySchedule }), 201);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/endpoints',
      operationId: 'listEndpoints',
      summary: 'List webhook endpoints',
      request: { query: z.object({ tenantId: z.string().min(1).max(255).optional(), cursor: Cursor, limit: Limit }) },
      responses: pageResponse(Endpoint, 'Endpoints, newest first'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const query = { after: cursorKey(q.cursor), limit: q.limit };
      const page = await endpoints.list({ tenantId: tenantScope(c, q.tenantId) }, query);
      return c.json(mayWrite(c) ? page : { ...page, items: page.items.map(redactedView) }, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/endpoints/{id}',
      operationId: 'getEndpoint',
      summary: 'Get a webhook endpoint',
      request: { params: IdParam },
      responses: { 200: { description: 'The endpoint', ...json(Endpoint) } },
    }),
    async (c) => {
      const endpoint = await endpoints.get(c.req.valid('param').id, keyTenant(c));
      return c.json(mayWrite(c) ? endpoint : redactedView(endpoint), 200);
    },
  );

  router.openapi(
    route('endpoints:write', {
      method: 'patch',
      path: '/endpoints/{id}',
      operationId: 'updateEndpoint',
      summary: 'Change a webhook endpoint; {"enabled": true} re-enables a disabled one',
      request: { params: IdParam, body: { required: true, ...json(EndpointPatch) } },
      responses: { 200: { description: 'The endpoint', ...json(Endpoint) } },
    }),
    async (c) => {
      const { retrySchedule, ...change } = c.req.valid('json');
      const by = actorLabel(actorOf(c));
      const id = c.req.valid('param').id;
      return c.json(await endpoints.update(id, { ...change, retryScheduleMs: retrySchedule }, by, keyTenant(c)), 200);
    },
  );

  router.openapi(
    route('endpoints:write', {
      method: 'delete',
      path: '/endpoints/{id}',
      operationId: 'deleteEndpoint',
      summary: 'Delete a webhook endpoint (its delivery history is kept)',
      request: { params: IdParam },
      responses: { 204: { description: 'Deleted' } },
    }),
    async (c) => {
      await endpoints.remove(c.req.valid('param').id, keyTenant(c));
      return c.body(null, 204);
    },
  );

  router.openapi(
    route('endpoints:write', {
      method: 'post',
      path: '/endpoints/{id}/rotate-secret',
      operationId: 'rotateEndpointSecret',
      summary: 'Rotate the signing secret; the old one keeps signing alongside for 24 h',
      request: { params: IdParam },
      responses: {
        200: {
          description: 'The new secret',
          ...json(
            z.object({
              id: z.string(),
              secret: z.string(),
              previousSecretExpiresAt: z.string().nullable().openapi({
                description:
                  'Until when the old secret signs too; null when the old one could not be decrypted (its key was lost) and was dropped',
              }),
            }),
          ),
        },
      },
    }),
    async (c) => c.json(await endpoints.rotateSecret(c.req.valid('param').id, keyTenant(c)), 200),
  );

  router.openapi(
    route('endpoints:write', {
      method: 'post',
      path: '/endpoints/{id}/test',
      operationId: 'sendTestEvent',
      summary:
        'Send an opsflow.test event to this endpoint alone, as a delivery like any other (not to PagerDuty endpoints)',
      request: { params: IdParam },
      responses: {
        202: {
          description: 'The test event and its delivery, started',
          ...json(z.object({ eventId: z.string(), deliveryId: z.string() }).openapi('TestSend')),
        },
      },
    }),
    async (c) => c.json(await endpoints.sendTest(c.req.valid('param').id, actorLabel(actorOf(c)), keyTenant(c)), 202),
  );

  return router;
}
