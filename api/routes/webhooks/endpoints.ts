/** Webhook endpoints: create (the secret is shown once), list, get, change, delete, rotate the secret. */
import { z } from '@hono/zod-openapi';
import { formatDuration, parseDuration } from '../../../lib/durations.js';
import { newId } from '../../../lib/ids.js';
import { page } from '../../../lib/pagination.js';
import type { SecretBox } from '../../../lib/secret-box.js';
import { actorLabel } from '../../../lib/keys/scopes.js';
import { ENDPOINT_FORMATS, PAGERDUTY_EVENT_TYPES } from '../../../lib/webhooks/formats.js';
import { ENDPOINT_ORDERINGS } from '../../../lib/webhooks/contract.js';
import { publishEvent, webhookServiceDeps } from '../../../lib/webhooks/service.js';
import { generateSecret, isValidSecret } from '../../../lib/webhooks/signing.js';
import { resolveWebhookTarget, transportPolicy, UrlRefusedError } from '../../../lib/webhooks/ssrf.js';
import { DEFAULT_RETRY_SCHEDULE, DEFAULT_TIMEOUT_MS } from '../../../lib/webhooks/contract.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import type { ApiDeps } from '../../deps.js';
import { actorOf } from '../../auth.js';
import { ApiError } from '../../errors.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { EventType, IdParam, RetrySchedule } from './shared.js';

const RoutingKey = z
  .string()
  .regex(/^[A-Za-z0-9]{32}$/, 'a PagerDuty integration (routing) key: 32 letters and digits');

const EndpointCreate = z
  .object({
    url: z.string().min(1).max(2048),
    description: z.string().max(500).optional(),
    eventTypes: z.array(EventType).min(1).max(100).optional(),
    secret: z.string().refine(isValidSecret, 'must be whsec_ followed by base64 of 24–64 bytes').optional(),
    retrySchedule: RetrySchedule.optional(),
    timeoutMs: z.number().int().min(1000).max(60_000).optional(),
    tenantId: z.string().min(1).max(255).optional().openapi({
      description:
        'The tenant whose events this endpoint receives (with events of no tenant only if it has none). Fixed once set',
    }),
    format: z.enum(ENDPOINT_FORMATS).optional().openapi({
      description:
        'What the endpoint receives: the Standard Webhooks envelope (default), a Slack incoming-webhook message, or a PagerDuty Events API v2 event (only events that trigger or resolve a condition). Fixed once set',
    }),
    routingKey: RoutingKey.optional().openapi({
      description:
        "The PagerDuty integration's routing key; required with format pagerduty. Stored encrypted, never shown",
    }),
    ordering: z.enum(ENDPOINT_ORDERINGS).optional().openapi({
      description:
        'fifo: events are delivered one at a time, in the order they were published (the next waits until the one before is delivered or dead-lettered); none (default): concurrently. Fixed once set',
    }),
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
    eventTypes: z.array(EventType).min(1).max(100).nullable().optional(),
    retrySchedule: RetrySchedule.optional(),
    timeoutMs: z.number().int().min(1000).max(60_000).optional(),
    enabled: z.boolean().optional(),
    routingKey: RoutingKey.optional().openapi({ description: 'A new routing key (pagerduty endpoints only)' }),
  })
  .strict()
  .openapi('EndpointPatch');

const Endpoint = z
  .object({
    id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    eventTypes: z.array(z.string()).nullable(),
    retrySchedule: z.array(z.string()),
    timeoutMs: z.number(),
    enabled: z.boolean(),
    disabledReason: z.string().nullable(),
    tenantId: z.string().nullable(),
    format: z.enum(ENDPOINT_FORMATS),
    ordering: z.enum(ENDPOINT_ORDERINGS),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Endpoint');

interface EndpointRow {
  id: string;
  url: string;
  description: string | null;
  event_types: string[] | null;
  retry_schedule_ms: number[];
  timeout_ms: number;
  enabled: boolean;
  disabled_reason: string | null;
  tenant_id: string | null;
  format: (typeof ENDPOINT_FORMATS)[number];
  ordering: (typeof ENDPOINT_ORDERINGS)[number];
  created_at: Date;
  updated_at: Date;
}

const ENDPOINT_COLUMNS =
  'id, url, description, event_types, retry_schedule_ms, timeout_ms, enabled, disabled_reason, tenant_id, format, ordering, created_at, updated_at';

function endpointJson(r: EndpointRow) {
  return {
    id: r.id,
    url: r.url,
    description: r.description,
    eventTypes: r.event_types,
    retrySchedule: r.retry_schedule_ms.map(formatDuration),
    timeoutMs: r.timeout_ms,
    enabled: r.enabled,
    disabledReason: r.disabled_reason,
    tenantId: r.tenant_id,
    format: r.format,
    ordering: r.ordering,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

/** Signing secrets are stored encrypted (`deps.secrets`) and shown only when made or rotated. */
export function endpointRoutes(deps: ApiDeps & { secrets: SecretBox }) {
  const router = newRouter();
  const { pool } = deps;
  const transport = transportPolicy(deps.config.webhooks);
  const events = webhookServiceDeps(deps.config, deps.pool, deps.temporal, deps.queues);

  async function checkUrl(url: string) {
    try {
      await resolveWebhookTarget(url, transport);
    } catch (err) {
      if (err instanceof UrlRefusedError) {
        throw new ApiError(422, 'unprocessable', `URL refused: ${err.message}`, [
          { path: 'url', message: err.message },
        ]);
      }
      throw err;
    }
  }

  async function loadEndpoint(id: string): Promise<EndpointRow> {
    const { rows } = await pool.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM opsflow.webhook_endpoints WHERE id = $1 AND deleted_at IS NULL`,
      [id],
    );
    if (!rows[0]) throw new ApiError(404, 'not_found', `endpoint ${id} not found`);
    return rows[0];
  }

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
      const body = c.req.valid('json');
      if (
        body.format === 'pagerduty' &&
        body.eventTypes &&
        !body.eventTypes.some((t) => PAGERDUTY_EVENT_TYPES.includes(t))
      ) {
        throw new ApiError(
          422,
          'unprocessable',
          `a PagerDuty endpoint receives only events that trigger or resolve a condition (${PAGERDUTY_EVENT_TYPES.join(', ')}); none of eventTypes is one`,
          [{ path: 'eventTypes', message: 'no event type PagerDuty would receive' }],
        );
      }
      await checkUrl(body.url);
      const secret = body.secret ?? generateSecret();
      const schedule = body.retrySchedule ?? DEFAULT_RETRY_SCHEDULE.map((s) => parseDuration(s)!);
      const { rows } = await pool.query<EndpointRow>(
        `INSERT INTO opsflow.webhook_endpoints (id, url, description, event_types, secret, retry_schedule_ms, timeout_ms, tenant_id,
           format, routing_key, ordering)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${ENDPOINT_COLUMNS}`,
        [
          newId('ep'),
          body.url,
          body.description ?? null,
          body.eventTypes ?? null,
          deps.secrets.encrypt(secret),
          schedule,
          body.timeoutMs ?? DEFAULT_TIMEOUT_MS,
          body.tenantId ?? null,
          body.format ?? 'standard',
          body.routingKey ? deps.secrets.encrypt(body.routingKey) : null,
          body.ordering ?? 'none',
        ],
      );
      return c.json({ ...endpointJson(rows[0]!), secret }, 201);
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
      const key = cursorKey(q.cursor);
      const { rows } = await pool.query<EndpointRow>(
        `SELECT ${ENDPOINT_COLUMNS} FROM opsflow.webhook_endpoints
         WHERE deleted_at IS NULL AND ($4::text IS NULL OR tenant_id = $4)
           AND ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
         ORDER BY created_at DESC, id DESC LIMIT $3`,
        [key?.at ?? null, key?.id ?? null, q.limit + 1, q.tenantId ?? null],
      );
      const { items, nextCursor } = page(rows, q.limit, (r) => r.created_at);
      return c.json({ items: items.map(endpointJson), nextCursor }, 200);
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
    async (c) => c.json(endpointJson(await loadEndpoint(c.req.valid('param').id)), 200),
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
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const before = await loadEndpoint(id);
      if (body.routingKey !== undefined && before.format !== 'pagerduty') {
        throw new ApiError(
          422,
          'unprocessable',
          `endpoint ${id} is a ${before.format} endpoint: only pagerduty ones have a routing key`,
          [{ path: 'routingKey', message: 'only for format pagerduty' }],
        );
      }
      if (body.url !== undefined) await checkUrl(body.url);
      const { rows } = await pool.query<EndpointRow>(
        `UPDATE opsflow.webhook_endpoints SET
           url = COALESCE($2, url),
           description = CASE WHEN $3 THEN $4 ELSE description END,
           event_types = CASE WHEN $5 THEN $6::text[] ELSE event_types END,
           retry_schedule_ms = COALESCE($7, retry_schedule_ms),
           timeout_ms = COALESCE($8, timeout_ms),
           enabled = COALESCE($9, enabled),
           disabled_reason = CASE WHEN $9 IS NULL THEN disabled_reason WHEN $9 THEN NULL ELSE 'disabled by an operator' END,
           disabled_at = CASE WHEN $9 IS NULL THEN disabled_at WHEN $9 THEN NULL ELSE now() END,
           failing_since = CASE WHEN $9 THEN NULL ELSE failing_since END,
           routing_key = COALESCE($10, routing_key),
           updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL RETURNING ${ENDPOINT_COLUMNS}`,
        [
          id,
          body.url ?? null,
          body.description !== undefined,
          body.description ?? null,
          body.eventTypes !== undefined,
          body.eventTypes ?? null,
          body.retrySchedule ?? null,
          body.timeoutMs ?? null,
          body.enabled ?? null,
          body.routingKey ? deps.secrets.encrypt(body.routingKey) : null,
        ],
      );
      const after = rows[0];
      if (!after) throw new ApiError(404, 'not_found', `endpoint ${id} not found`);
      if (!before.enabled && after.enabled) {
        // Clears the endpoint.disabled condition (a PagerDuty incident resolves). The endpoint is usable already,
        // so a failed publish is logged, not an error: the reconciler starts any delivery it stored.
        await publishEvent(events, {
          type: 'endpoint.enabled',
          payload: { endpointId: id, host: new URL(after.url).host, by: actorLabel(actorOf(c)) },
          idempotencyKey: `endpoint.enabled:${id}:${after.updated_at.toISOString()}`,
          ...(after.tenant_id ? { tenantId: after.tenant_id } : {}),
        }).catch((err: unknown) => deps.log.warn({ err, endpointId: id }, 'endpoint.enabled not published'));
      }
      return c.json(endpointJson(after), 200);
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
      const { id } = c.req.valid('param');
      const { rowCount } = await pool.query(
        `UPDATE opsflow.webhook_endpoints SET deleted_at = now(), enabled = false, updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL`,
        [id],
      );
      if (!rowCount) throw new ApiError(404, 'not_found', `endpoint ${id} not found`);
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
          ...json(z.object({ id: z.string(), secret: z.string(), previousSecretExpiresAt: z.string() })),
        },
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const secret = generateSecret();
      const { rows } = await pool.query<{ previous_secret_expires_at: Date }>(
        `UPDATE opsflow.webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = now() + interval '24 hours',
           secret = $2, updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL RETURNING previous_secret_expires_at`,
        [id, deps.secrets.encrypt(secret)],
      );
      if (!rows[0]) throw new ApiError(404, 'not_found', `endpoint ${id} not found`);
      return c.json({ id, secret, previousSecretExpiresAt: rows[0].previous_secret_expires_at.toISOString() }, 200);
    },
  );

  return router;
}
