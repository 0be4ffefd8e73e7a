/**
 * Webhook endpoints: their rows (opsflow.webhook_endpoints as the API shows them) and what the API does to them —
 * create (the secret shown once), list, read, change, delete, rotate the secret. Signing secrets and routing keys
 * are stored encrypted (the SecretBox), and so are URLs, with their origin and fingerprint in the clear beside
 * them. Refusals are WebhookErrors.
 */
import type { Config } from '../config.js';
import type { Pool } from '../db.js';
import { formatDuration, parseDuration } from '../durations.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import { page, type CursorKey } from '../pagination.js';
import { openStored, SecretBoxError, type SecretBox } from '../secret-box.js';
import { DEFAULT_RETRY_SCHEDULE, DEFAULT_TIMEOUT_MS, type EndpointOrdering } from './contract.js';
import { PAGERDUTY_EVENT_TYPES, type EndpointFormat } from './formats.js';
import { matchesType } from './event-types.js';
import { internalKey, TEST_EVENT_TYPE } from './ops-events.js';
import { publishEvent, WebhookError, type WebhookServiceDeps } from './service.js';
import { generateSecret } from './signing.js';
import { resolveWebhookTarget, transportPolicy, UrlRefusedError } from './ssrf.js';
import { hostOf, redactUrl, storedUrl } from './urls.js';

interface EndpointRow {
  id: string;
  /** Encrypted (openStored); plaintext in rows written by an earlier release until a worker's start. */
  url: string;
  url_origin: string;
  url_fingerprint: string;
  description: string | null;
  event_types: string[] | null;
  channels: string[] | null;
  payload_filter: Record<string, unknown>[] | null;
  retry_schedule_ms: number[];
  timeout_ms: number;
  enabled: boolean;
  disabled_reason: string | null;
  tenant_id: string | null;
  format: EndpointFormat;
  ordering: EndpointOrdering;
  rate_limit_per_second: number | null;
  created_at: Date;
  updated_at: Date;
}

const ENDPOINT_COLUMNS =
  'id, url, url_origin, url_fingerprint, description, event_types, channels, payload_filter, retry_schedule_ms, timeout_ms, enabled, disabled_reason, tenant_id, format, ordering, rate_limit_per_second, created_at, updated_at';

/** An endpoint as the API answers it (never its secret or routing key). */
export interface EndpointView {
  id: string;
  /** The URL; to a key without endpoints:write, only its scheme and host (redactedView). */
  url: string;
  urlFingerprint: string;
  description: string | null;
  eventTypes: string[] | null;
  /** Only events on one of these channels reach it (null: any event). */
  channels: string[] | null;
  /** Only events whose payload contains one of these objects reach it (null: any payload). */
  filter: Record<string, unknown>[] | null;
  /** Durations before each retry, as written (`5s`, `1h`). */
  retrySchedule: string[];
  timeoutMs: number;
  enabled: boolean;
  disabledReason: string | null;
  tenantId: string | null;
  format: EndpointFormat;
  ordering: EndpointOrdering;
  /** At most this many requests a second reach it (null: unlimited). */
  rateLimitPerSecond: number | null;
  createdAt: string;
  updatedAt: string;
}

/** The view without the URL's path and query, for a key that may read endpoints but not change them. */
export const redactedView = (v: EndpointView): EndpointView => ({ ...v, url: redactUrl(v.url) });

/** The endpoint as answered: its URL decrypted (one no key opens shows as its origin only). */
function endpointView(box: SecretBox, r: EndpointRow): EndpointView {
  let url: string;
  try {
    url = openStored(box, r.url);
  } catch (err) {
    if (!(err instanceof SecretBoxError)) throw err;
    url = redactUrl(r.url_origin);
  }
  return {
    id: r.id,
    url,
    urlFingerprint: r.url_fingerprint,
    description: r.description,
    eventTypes: r.event_types,
    channels: r.channels,
    filter: r.payload_filter,
    retrySchedule: r.retry_schedule_ms.map(formatDuration),
    timeoutMs: r.timeout_ms,
    enabled: r.enabled,
    disabledReason: r.disabled_reason,
    tenantId: r.tenant_id,
    format: r.format,
    ordering: r.ordering,
    rateLimitPerSecond: r.rate_limit_per_second,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

export interface NewEndpoint {
  url: string;
  description?: string;
  eventTypes?: string[];
  channels?: string[];
  /** Objects the payload must contain one of (jsonb containment). */
  filter?: Record<string, unknown>[];
  /** A caller-chosen secret (`whsec_…`); one is generated when absent. */
  secret?: string;
  retryScheduleMs?: number[];
  timeoutMs?: number;
  tenantId?: string;
  format?: EndpointFormat;
  routingKey?: string;
  ordering?: EndpointOrdering;
  rateLimitPerSecond?: number;
}

/** A change: an absent field stays; `null` clears description, eventTypes and channels. */
export interface EndpointChange {
  url?: string;
  description?: string | null;
  eventTypes?: string[] | null;
  channels?: string[] | null;
  filter?: Record<string, unknown>[] | null;
  retryScheduleMs?: number[];
  timeoutMs?: number;
  enabled?: boolean;
  routingKey?: string;
  rateLimitPerSecond?: number | null;
}

export interface EndpointServiceDeps {
  config: Config;
  pool: Pool;
  secrets: SecretBox;
  log: Logger;
  /** Publishes `endpoint.enabled` when an operator re-enables one. */
  events: WebhookServiceDeps;
}

const notFound = (id: string) => new WebhookError('not_found', `endpoint ${id} not found`);

export function createEndpointService(deps: EndpointServiceDeps) {
  const { pool, secrets } = deps;
  const transport = transportPolicy(deps.config.webhooks);
  const view = (r: EndpointRow) => endpointView(secrets, r);

  /** The SSRF guard's answer for a URL, as a refusal naming the field. */
  async function checkUrl(url: string) {
    try {
      await resolveWebhookTarget(url, transport);
    } catch (err) {
      if (err instanceof UrlRefusedError) {
        throw new WebhookError('unprocessable', `URL refused: ${err.message}`, [{ path: 'url', message: err.message }]);
      }
      throw err;
    }
  }

  /** The endpoint, if it exists and — for a tenant's request — is that tenant's (another's is not found). */
  async function row(id: string, tenant?: string): Promise<EndpointRow> {
    const { rows } = await pool.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM opsflow.webhook_endpoints
       WHERE id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR tenant_id = $2)`,
      [id, tenant ?? null],
    );
    if (!rows[0]) throw notFound(id);
    return rows[0];
  }

  return {
    async create(input: NewEndpoint): Promise<EndpointView & { secret: string }> {
      if (
        input.format === 'pagerduty' &&
        input.eventTypes &&
        !input.eventTypes.some((p) => PAGERDUTY_EVENT_TYPES.some((t) => matchesType(p, t)))
      ) {
        throw new WebhookError(
          'unprocessable',
          `a PagerDuty endpoint receives only events that trigger or resolve a condition (${PAGERDUTY_EVENT_TYPES.join(', ')}); none of eventTypes is or matches one`,
          [{ path: 'eventTypes', message: 'no event type PagerDuty would receive' }],
        );
      }
      await checkUrl(input.url);
      const secret = input.secret ?? generateSecret();
      const url = storedUrl(secrets, input.url);
      const { rows } = await pool.query<EndpointRow>(
        `INSERT INTO opsflow.webhook_endpoints (id, url, description, event_types, secret, retry_schedule_ms, timeout_ms, tenant_id,
           format, routing_key, ordering, url_origin, url_fingerprint, channels, payload_filter, rate_limit_per_second)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING ${ENDPOINT_COLUMNS}`,
        [
          newId('ep'),
          url.url,
          input.description ?? null,
          input.eventTypes ?? null,
          secrets.encrypt(secret),
          input.retryScheduleMs ?? DEFAULT_RETRY_SCHEDULE.map((s) => parseDuration(s)!),
          input.timeoutMs ?? DEFAULT_TIMEOUT_MS,
          input.tenantId ?? null,
          input.format ?? 'standard',
          input.routingKey ? secrets.encrypt(input.routingKey) : null,
          input.ordering ?? 'none',
          url.origin,
          url.fingerprint,
          input.channels ?? null,
          input.filter ? JSON.stringify(input.filter) : null,
          input.rateLimitPerSecond ?? null,
        ],
      );
      return { ...view(rows[0]!), secret };
    },

    /** Newest first; optionally one tenant's. */
    async list(filter: { tenantId?: string }, query: { after?: CursorKey; limit: number }) {
      const key = query.after;
      const { rows } = await pool.query<EndpointRow>(
        `SELECT ${ENDPOINT_COLUMNS} FROM opsflow.webhook_endpoints
         WHERE deleted_at IS NULL AND ($4::text IS NULL OR tenant_id = $4)
           AND ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
         ORDER BY created_at DESC, id DESC LIMIT $3`,
        [key?.at ?? null, key?.id ?? null, query.limit + 1, filter.tenantId ?? null],
      );
      const { items, nextCursor } = page(rows, query.limit, (r) => r.created_at);
      return { items: items.map(view), nextCursor };
    },

    async get(id: string, tenant?: string): Promise<EndpointView> {
      return view(await row(id, tenant));
    },

    /**
     * Applies a change; `enabled: true` re-enables a disabled endpoint and publishes `endpoint.enabled` (which
     * clears the condition, e.g. resolves a PagerDuty incident). `by` names the actor in that event.
     */
    async update(id: string, change: EndpointChange, by: string, tenant?: string): Promise<EndpointView> {
      const before = await row(id, tenant);
      if (change.routingKey !== undefined && before.format !== 'pagerduty') {
        throw new WebhookError(
          'unprocessable',
          `endpoint ${id} is a ${before.format} endpoint: only pagerduty ones have a routing key`,
          [{ path: 'routingKey', message: 'only for format pagerduty' }],
        );
      }
      if (change.url !== undefined) await checkUrl(change.url);
      const url = change.url !== undefined ? storedUrl(secrets, change.url) : undefined;
      const { rows } = await pool.query<EndpointRow>(
        `UPDATE opsflow.webhook_endpoints SET
           url = COALESCE($2, url),
           url_origin = COALESCE($11, url_origin),
           url_fingerprint = COALESCE($12, url_fingerprint),
           channels = CASE WHEN $13 THEN $14::text[] ELSE channels END,
           payload_filter = CASE WHEN $15 THEN $16::jsonb ELSE payload_filter END,
           rate_limit_per_second = CASE WHEN $17 THEN $18::integer ELSE rate_limit_per_second END,
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
          url?.url ?? null,
          change.description !== undefined,
          change.description ?? null,
          change.eventTypes !== undefined,
          change.eventTypes ?? null,
          change.retryScheduleMs ?? null,
          change.timeoutMs ?? null,
          change.enabled ?? null,
          change.routingKey ? secrets.encrypt(change.routingKey) : null,
          url?.origin ?? null,
          url?.fingerprint ?? null,
          change.channels !== undefined,
          change.channels ?? null,
          change.filter !== undefined,
          change.filter ? JSON.stringify(change.filter) : null,
          change.rateLimitPerSecond !== undefined,
          change.rateLimitPerSecond ?? null,
        ],
      );
      const after = rows[0];
      if (!after) throw notFound(id);
      if (!before.enabled && after.enabled) {
        // The endpoint is usable already, so a failed publish is logged, not an error: the reconciler starts any
        // delivery it stored.
        await publishEvent(deps.events, {
          type: 'endpoint.enabled',
          payload: { endpointId: id, host: hostOf(after.url_origin), by },
          idempotencyKey: internalKey(`endpoint.enabled:${id}:${after.updated_at.toISOString()}`),
          ...(after.tenant_id ? { tenantId: after.tenant_id } : {}),
        }).catch((err: unknown) => deps.log.warn({ err, endpointId: id }, 'endpoint.enabled not published'));
      }
      return view(after);
    },

    /** Soft delete: the endpoint stops receiving; its delivery history is kept. */
    async remove(id: string, tenant?: string): Promise<void> {
      const { rowCount } = await pool.query(
        `UPDATE opsflow.webhook_endpoints SET deleted_at = now(), enabled = false, updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR tenant_id = $2)`,
        [id, tenant ?? null],
      );
      if (!rowCount) throw notFound(id);
    },

    /**
     * Sends `opsflow.test` to this endpoint alone (whatever its event types, channels and filter), as a delivery
     * like any other — signed, retried, with its attempts recorded — so its owner sees the receiver answer.
     * A disabled endpoint is refused (enable it first), and a PagerDuty one (a test would page someone).
     */
    async sendTest(id: string, by: string, tenant?: string): Promise<{ eventId: string; deliveryId: string }> {
      const ep = await row(id, tenant);
      if (!ep.enabled) throw new WebhookError('conflict', `endpoint ${id} is disabled: enable it before a test send`);
      if (ep.format === 'pagerduty') {
        throw new WebhookError('unprocessable', 'a PagerDuty endpoint is not sent test events: it would page someone');
      }
      const published = await publishEvent(deps.events, {
        type: TEST_EVENT_TYPE,
        payload: {
          endpointId: id,
          message: 'A test event from opsflow: this endpoint is reachable and verifies.',
          sentBy: by,
        },
        idempotencyKey: internalKey(`test:${id}:${newId('t')}`),
        tenantId: ep.tenant_id ?? undefined,
        onlyEndpoint: id,
      });
      const delivery = published.deliveries[0];
      if (!delivery) throw new WebhookError('conflict', `endpoint ${id} changed during the test send; send it again`);
      return { eventId: published.eventId, deliveryId: delivery.id };
    },

    /** A new secret; the old one keeps signing alongside for 24 h. */
    async rotateSecret(
      id: string,
      tenant?: string,
    ): Promise<{ id: string; secret: string; previousSecretExpiresAt: string | null }> {
      const current = await pool.query<{ secret: string }>(
        `SELECT secret FROM opsflow.webhook_endpoints
         WHERE id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR tenant_id = $2)`,
        [id, tenant ?? null],
      );
      if (!current.rows[0]) throw notFound(id);
      const secret = generateSecret();
      // A secret no key opens any more (its key was lost) is not kept beside the new one: it would fail every
      // attempt for the next 24 h instead of signing.
      const keepOld = secrets.opens(current.rows[0].secret);
      const { rows } = await pool.query<{ previous_secret_expires_at: Date | null }>(
        `UPDATE opsflow.webhook_endpoints SET
           previous_secret = CASE WHEN $3 THEN secret END,
           previous_secret_expires_at = CASE WHEN $3 THEN now() + interval '24 hours' END,
           secret = $2, updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL RETURNING previous_secret_expires_at`,
        [id, secrets.encrypt(secret), keepOld],
      );
      if (!rows[0]) throw notFound(id);
      return { id, secret, previousSecretExpiresAt: rows[0].previous_secret_expires_at?.toISOString() ?? null };
    },
  };
}

export type EndpointService = ReturnType<typeof createEndpointService>;

/** Open dead letters, and the endpoints failing or disabled now (the oldest trouble first). */
export async function webhookTrouble(pool: Pool, limit = 100) {
  const [dlq, endpoints] = await Promise.all([
    pool.query<{ n: string }>('SELECT count(*) AS n FROM opsflow.dead_letters WHERE resolved_at IS NULL'),
    pool.query<{
      id: string;
      url_origin: string;
      failing_since: Date | null;
      disabled_at: Date | null;
      disabled_reason: string | null;
    }>(
      `SELECT id, url_origin, failing_since, disabled_at, disabled_reason FROM opsflow.webhook_endpoints
       WHERE deleted_at IS NULL AND (failing_since IS NOT NULL OR disabled_at IS NOT NULL)
       ORDER BY coalesce(disabled_at, failing_since) LIMIT $1`,
      [limit],
    ),
  ]);
  return { openDeadLetters: Number(dlq.rows[0]?.n ?? 0), endpoints: endpoints.rows };
}
