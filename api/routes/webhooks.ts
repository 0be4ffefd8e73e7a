/**
 * Webhook API: endpoints, events (fan-out), deliveries (PostgreSQL lists, live detail) and dead letters.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { WorkflowNotFoundError } from '@temporalio/client';
import { formatDuration, parseDuration } from '../../lib/durations.js';
import { newId } from '../../lib/ids.js';
import { page } from '../../lib/pagination.js';
import {
  discardDeadLetter,
  publishEvent,
  redriveDeadLetters,
  redriveDelivery,
  WebhookError,
  webhookServiceDeps,
} from '../../lib/webhooks/service.js';
import { generateSecret, isValidSecret } from '../../lib/webhooks/signing.js';
import { allowList, resolveWebhookTarget, UrlRefusedError } from '../../lib/webhooks/ssrf.js';
import {
  DEFAULT_RETRY_SCHEDULE,
  DEFAULT_TIMEOUT_MS,
  deliveryWorkflowId,
  liveStateQuery,
  type DeliveryLiveState,
} from '../../workflows/webhooks/definitions.js';
import type { ApiDeps } from '../app.js';
import { ApiError } from '../errors.js';
import { Cursor, cursorKey, json, Limit, pageResponse, security } from '../pagination.js';
import { newRouter } from '../router.js';

const EventType = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');

const RetrySchedule = z
  .array(z.string())
  .min(1)
  .max(20)
  .transform((steps, ctx) => {
    const parsed = steps.map((s) => parseDuration(s));
    parsed.forEach((ms, i) => {
      if (ms === undefined) ctx.addIssue({ code: 'custom', path: [i], message: `"${steps[i]}" is not a duration` });
      else if (ms > 7 * 24 * 3600 * 1000) ctx.addIssue({ code: 'custom', path: [i], message: 'at most 7d' });
    });
    return parsed as number[];
  })
  .openapi({ type: 'array', items: { type: 'string' }, example: [...DEFAULT_RETRY_SCHEDULE] });

const EndpointCreate = z
  .object({
    url: z.string().min(1).max(2048),
    description: z.string().max(500).optional(),
    eventTypes: z.array(EventType).min(1).max(100).optional(),
    secret: z.string().refine(isValidSecret, 'must be whsec_ followed by base64 of 24–64 bytes').optional(),
    retrySchedule: RetrySchedule.optional(),
    timeoutMs: z.number().int().min(1000).max(60_000).optional(),
  })
  .strict()
  .openapi('EndpointCreate');

const EndpointPatch = z
  .object({
    url: z.string().min(1).max(2048).optional(),
    description: z.string().max(500).nullable().optional(),
    eventTypes: z.array(EventType).min(1).max(100).nullable().optional(),
    retrySchedule: RetrySchedule.optional(),
    timeoutMs: z.number().int().min(1000).max(60_000).optional(),
    enabled: z.boolean().optional(),
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
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Endpoint');

const EventCreate = z
  .object({
    type: EventType,
    payload: z.unknown().refine((v) => v !== undefined, 'required'),
    idempotencyKey: z.string().min(1).max(255).optional(),
    tenantId: z.string().min(1).max(255).optional(),
  })
  .strict()
  .openapi('EventCreate');

const IdParam = z.object({ id: z.string().min(1).max(100) });
const DateParam = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

interface EndpointRow {
  id: string;
  url: string;
  description: string | null;
  event_types: string[] | null;
  retry_schedule_ms: number[];
  timeout_ms: number;
  enabled: boolean;
  disabled_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

const ENDPOINT_COLUMNS =
  'id, url, description, event_types, retry_schedule_ms, timeout_ms, enabled, disabled_reason, created_at, updated_at';

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
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

function serviceError(err: unknown): never {
  if (err instanceof WebhookError) {
    if (err.code === 'not_found') throw new ApiError(404, 'not_found', err.message);
    if (err.code === 'conflict') throw new ApiError(409, 'conflict', err.message);
    throw new ApiError(413, 'payload_too_large', err.message);
  }
  throw err;
}

export function webhookRoutes(deps: ApiDeps) {
  const router = newRouter();
  const { pool } = deps;
  const allowed = allowList(deps.config.webhooks.allowedCidrs);
  const service = webhookServiceDeps(deps.config, pool, deps.temporal, deps.queues);

  async function checkUrl(url: string) {
    try {
      await resolveWebhookTarget(url, allowed);
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

  // ---- endpoints ----

  router.openapi(
    createRoute({
      method: 'post',
      path: '/endpoints',
      summary: 'Create a webhook endpoint',
      security,
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
      await checkUrl(body.url);
      const secret = body.secret ?? generateSecret();
      const schedule = body.retrySchedule ?? DEFAULT_RETRY_SCHEDULE.map((s) => parseDuration(s)!);
      const { rows } = await pool.query<EndpointRow>(
        `INSERT INTO opsflow.webhook_endpoints (id, url, description, event_types, secret, retry_schedule_ms, timeout_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${ENDPOINT_COLUMNS}`,
        [
          newId('ep'),
          body.url,
          body.description ?? null,
          body.eventTypes ?? null,
          secret,
          schedule,
          body.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        ],
      );
      return c.json({ ...endpointJson(rows[0]!), secret }, 201);
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/endpoints',
      summary: 'List webhook endpoints',
      security,
      request: { query: z.object({ cursor: Cursor, limit: Limit }) },
      responses: pageResponse(Endpoint, 'Endpoints, newest first'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const key = cursorKey(q.cursor);
      const { rows } = await pool.query<EndpointRow>(
        `SELECT ${ENDPOINT_COLUMNS} FROM opsflow.webhook_endpoints
         WHERE deleted_at IS NULL AND ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
         ORDER BY created_at DESC, id DESC LIMIT $3`,
        [key?.at ?? null, key?.id ?? null, q.limit + 1],
      );
      const { items, nextCursor } = page(rows, q.limit, (r) => r.created_at);
      return c.json({ items: items.map(endpointJson), nextCursor }, 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/endpoints/{id}',
      summary: 'Get a webhook endpoint',
      security,
      request: { params: IdParam },
      responses: { 200: { description: 'The endpoint', ...json(Endpoint) } },
    }),
    async (c) => c.json(endpointJson(await loadEndpoint(c.req.valid('param').id)), 200),
  );

  router.openapi(
    createRoute({
      method: 'patch',
      path: '/endpoints/{id}',
      summary: 'Change a webhook endpoint; {"enabled": true} re-enables a disabled one',
      security,
      request: { params: IdParam, body: { required: true, ...json(EndpointPatch) } },
      responses: { 200: { description: 'The endpoint', ...json(Endpoint) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      await loadEndpoint(id);
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
        ],
      );
      if (!rows[0]) throw new ApiError(404, 'not_found', `endpoint ${id} not found`);
      return c.json(endpointJson(rows[0]), 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'delete',
      path: '/endpoints/{id}',
      summary: 'Delete a webhook endpoint (its delivery history is kept)',
      security,
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
    createRoute({
      method: 'post',
      path: '/endpoints/{id}/rotate-secret',
      summary: 'Rotate the signing secret; the old one keeps signing alongside for 24 h',
      security,
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
        [id, secret],
      );
      if (!rows[0]) throw new ApiError(404, 'not_found', `endpoint ${id} not found`);
      return c.json({ id, secret, previousSecretExpiresAt: rows[0].previous_secret_expires_at.toISOString() }, 200);
    },
  );

  // ---- events ----

  router.openapi(
    createRoute({
      method: 'post',
      path: '/events',
      summary: 'Publish an event: one delivery per enabled endpoint subscribed to its type',
      security,
      request: { body: { required: true, ...json(EventCreate) } },
      responses: {
        202: {
          description: 'Accepted; deliveries run as workflows',
          ...json(
            z.object({
              eventId: z.string(),
              deliveries: z.array(z.object({ id: z.string(), endpointId: z.string() })),
            }),
          ),
        },
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const result = await publishEvent(service, body).catch(serviceError);
      if (result.startFailed) {
        // Accepted all the same: the rows are committed and the workers' reconciler starts what is missing.
        deps.log.warn(
          { err: result.startFailed, eventId: result.eventId, requestId: c.get('requestId') },
          'event accepted; some delivery workflows could not be started now and will be started by the reconciler',
        );
      }
      return c.json({ eventId: result.eventId, deliveries: result.deliveries }, 202);
    },
  );

  // ---- deliveries ----

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
    createRoute({
      method: 'get',
      path: '/deliveries',
      summary: 'List deliveries, newest first',
      security,
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
    createRoute({
      method: 'get',
      path: '/deliveries/{id}',
      summary: 'One delivery: live status, every attempt, next attempt time',
      security,
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
    createRoute({
      method: 'post',
      path: '/deliveries/{id}/retry',
      summary: 'Attempt now: cuts a retry wait, or redrives a finished delivery with the same webhook-id',
      security,
      request: { params: IdParam },
      responses: {
        202: { description: 'Redriven', ...json(z.object({ id: z.string(), status: z.literal('redriven') })) },
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      await redriveDelivery(service, id).catch(serviceError);
      return c.json({ id, status: 'redriven' as const }, 202);
    },
  );

  // ---- dead letters ----

  router.openapi(
    createRoute({
      method: 'get',
      path: '/dead-letters',
      summary: 'Open dead letters, newest first',
      security,
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
    createRoute({
      method: 'post',
      path: '/dead-letters/redrive',
      summary: 'Redrive open dead letters (oldest first) of enabled endpoints',
      security,
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
      return c.json(await redriveDeadLetters(service, { ...body, limit: body.limit ?? 50 }), 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'post',
      path: '/dead-letters/{id}/discard',
      summary: 'Discard a dead letter: its delivery is closed as discarded',
      security,
      request: { params: IdParam },
      responses: {
        200: { description: 'Discarded', ...json(z.object({ id: z.string(), status: z.literal('discarded') })) },
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      await discardDeadLetter(pool, id).catch(serviceError);
      return c.json({ id, status: 'discarded' as const }, 200);
    },
  );

  return router;
}
