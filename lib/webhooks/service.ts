/**
 * Webhook operations shared by the API and the activities: publishing an event (fan-out to one delivery
 * workflow per subscribed endpoint) and starting deliveries' workflows (redrives: ./redrive.ts). PostgreSQL is written first, then the
 * workflows are started, so a crash in between loses nothing: repeating the call (same idempotency key)
 * or the scheduled redrive starts what is missing, and workflow ids make a second start a no-op.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
} from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';

import { ServiceError } from '../errors.js';
import { newId } from '../ids.js';
import { startAll, type StartOutcome } from '../workflow-starts.js';
import type { WebhookServiceDeps } from './deps.js';
import { wakeSequencer } from './fifo.js';
export type { WebhookServiceDeps } from './deps.js';
export { canStartEagerly, webhookServiceDeps } from './deps.js';
import { conditionKey, PAGERDUTY_EVENT_TYPES } from './formats.js';
import { OpsKind, OpsStatus, TenantId, WebhookEndpointId, WebhookEvent, WebhookHost } from '../search-attributes.js';
import { eventTypeMatchSql } from './event-types.js';
import { hostOf } from './urls.js';
import { deliveryWorkflowId, type WebhookDeliveryInput } from './contract.js';

/** A refusal of the webhook service; the API renders it as its error envelope (lib/errors.ts). */
export class WebhookError extends ServiceError {
  constructor(
    code: 'not_found' | 'conflict' | 'payload_too_large' | 'unprocessable' | 'forbidden',
    message: string,
    details?: unknown,
  ) {
    super(code, message, details);
  }
}

export interface PublishInput {
  type: string;
  payload: unknown;
  idempotencyKey?: string;
  tenantId?: string;
  /**
   * Published by the tenant's own key: the event reaches only that tenant's endpoints, never the operator's
   * tenant-less ones (a tenant cannot post into the operator's channels).
   */
  tenantOnly?: boolean;
  /** Overrides the endpoints' retry schedules for this event's deliveries (ms before each attempt). */
  retryScheduleMs?: number[];
  /** Reaches endpoints without channels, and those with one of these. */
  channels?: string[];
  /**
   * A test send: this one endpoint (enabled, of the event's tenant) and no other, whatever its event types,
   * channels and payload filter.
   */
  onlyEndpoint?: string;
}

export interface PublishResult {
  eventId: string;
  deliveries: { id: string; endpointId: string }[];
  /** False when the idempotency key named an event published before. */
  created: boolean;
  /** Set when some delivery workflow could not be started now; the reconciler starts it later. */
  startFailed?: Error;
}

export interface DeliveryStart {
  id: string;
  endpoint_id: string;
  event_type: string;
  tenant_id: string | null;
  /** The endpoint's URL origin (scheme and host): the URL itself is encrypted and not needed to start. */
  url_origin: string;
  retry_schedule_ms: number[];
  attempts: number;
  ordering: 'none' | 'fifo';
}

export function searchAttributes(d: DeliveryStart): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [
    { key: OpsKind, value: 'webhook' },
    { key: OpsStatus, value: 'pending' },
    { key: WebhookEvent, value: d.event_type },
    { key: WebhookEndpointId, value: d.endpoint_id },
    { key: WebhookHost, value: hostOf(d.url_origin) },
  ];
  if (d.tenant_id) pairs.push({ key: TenantId, value: d.tenant_id });
  return pairs;
}

export function deliveryInput(d: DeliveryStart): WebhookDeliveryInput {
  return { deliveryId: d.id, retryScheduleMs: d.retry_schedule_ms, previousAttempts: d.attempts };
}

/**
 * Deliveries of one event beyond this many are bulk work: their workflows (and the activities they run) get the
 * bulk task priority, so a fan-out to a thousand endpoints queues behind the small publishes beside it.
 */
export const BULK_FANOUT = 10;

/** The workflow option that puts bulk work behind interactive work (BULK_TASK_PRIORITY); nothing otherwise. */
export const priorityOf = (deps: WebhookServiceDeps, bulk: boolean) =>
  bulk ? { priority: { priorityKey: deps.bulkPriority } } : {};

/**
 * Starts the delivery's first run; a run that exists (running or finished) is left alone. An ordered endpoint's
 * delivery is not started here: its sequencer is woken (started if need be) and runs it in its turn.
 */
async function startDelivery(deps: WebhookServiceDeps, d: DeliveryStart, bulk: boolean): Promise<void> {
  if (d.ordering === 'fifo') return wakeSequencer(deps, d.endpoint_id);
  try {
    await deps.client.workflow.start(deps.workflowType, {
      taskQueue: deps.taskQueue,
      workflowId: deliveryWorkflowId(d.id),
      args: [deliveryInput(d)],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      typedSearchAttributes: searchAttributes(d),
      ...priorityOf(deps, bulk),
      requestEagerStart: deps.eagerStart,
      staticSummary: `${d.event_type} → ${hostOf(d.url_origin)}`,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

/** A delivery and what its workflow starts with: the event's own retry schedule, else the endpoint's. */
export const DELIVERY_START_COLUMNS = `d.id, d.endpoint_id, d.event_type, d.tenant_id, d.attempts, ep.url_origin, ep.ordering,
  coalesce(ev.retry_schedule_ms, ep.retry_schedule_ms) AS retry_schedule_ms`;
export const DELIVERY_START_FROM = `opsflow.webhook_deliveries d
  JOIN opsflow.webhook_endpoints ep ON ep.id = d.endpoint_id
  JOIN opsflow.webhook_events ev ON ev.id = d.event_id`;

export async function publishEvent(
  deps: WebhookServiceDeps,
  req: PublishInput,
  opts: {
    /**
     * Answer after this long even if the workflow starts have not finished (Temporal slow, or dying right now):
     * they go on in the background, and any that fails is the reconciler's. The API's publish uses it.
     */
    answerWithinMs?: number;
    log?: { warn(obj: object, msg: string): void };
  } = {},
): Promise<PublishResult> {
  const timestamp = new Date();
  // Standard Webhooks' recommended envelope; these exact bytes are signed and sent on every attempt.
  const body = JSON.stringify({ type: req.type, timestamp: timestamp.toISOString(), data: req.payload });
  if (Buffer.byteLength(body) > deps.maxPayloadBytes) {
    throw new WebhookError('payload_too_large', `event larger than ${deps.maxPayloadBytes} bytes`);
  }
  const params = [
    newId('msg'),
    req.type,
    body,
    req.idempotencyKey ?? null,
    req.tenantId ?? null,
    timestamp,
    req.retryScheduleMs ?? null,
    conditionKey(req.type, req.payload) ?? null,
    PAGERDUTY_EVENT_TYPES,
    req.tenantOnly === true,
    req.channels ?? null,
    req.onlyEndpoint ?? null,
  ];
  // The event, its deliveries (one per subscribed endpoint) and what their starts need, in one statement: one
  // round trip, committed together. An idempotency key seen before inserts nothing and comes back empty.
  const fresh = await deps.pool.query<DeliveryStart & { event_id: string }>(
    `WITH ev AS (
       INSERT INTO opsflow.webhook_events (id, type, body, idempotency_key, tenant_id, created_at, retry_schedule_ms,
         condition_key, channels)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $11)
       ON CONFLICT ((coalesce(tenant_id, '')), idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING id, retry_schedule_ms
     ), d AS (
       INSERT INTO opsflow.webhook_deliveries (id, event_id, endpoint_id, event_type, tenant_id)
       SELECT 'dlv_' || substr(md5(random()::text || ep.id), 1, 24), ev.id, ep.id, $2, $5
       FROM ev, opsflow.webhook_endpoints ep
       WHERE ep.enabled AND ep.deleted_at IS NULL AND ((ep.tenant_id IS NULL AND NOT $10) OR ep.tenant_id = $5)
         -- a test send reaches its one endpoint
         AND (ep.id = $12 OR ($12::text IS NULL AND ${eventTypeMatchSql(2)}
         -- an endpoint with channels takes only events on one of them
         AND (ep.channels IS NULL OR ep.channels && coalesce($11::text[], '{}'))
         -- a payload filter takes the events whose payload contains one of its objects
         AND (ep.payload_filter IS NULL OR EXISTS (
           SELECT 1 FROM jsonb_array_elements(ep.payload_filter) f WHERE ($3::jsonb -> 'data') @> f.value))
         -- PagerDuty endpoints get only events that trigger or resolve a condition
         AND (ep.format <> 'pagerduty' OR $2 = ANY ($9::text[]))))
       RETURNING id, event_id, endpoint_id, event_type, tenant_id, attempts
     )
     SELECT ev.id AS event_id, d.id, d.endpoint_id, d.event_type, d.tenant_id, d.attempts, ep.url_origin, ep.ordering,
            coalesce(ev.retry_schedule_ms, ep.retry_schedule_ms) AS retry_schedule_ms
     FROM ev LEFT JOIN d ON true LEFT JOIN opsflow.webhook_endpoints ep ON ep.id = d.endpoint_id
     ORDER BY d.endpoint_id`,
    params,
  );
  let eventId: string;
  let created = true;
  let deliveries: DeliveryStart[];
  if (fresh.rows.length > 0) {
    eventId = fresh.rows[0]!.event_id;
    // An event no endpoint subscribes to comes back as one row with no delivery.
    deliveries = fresh.rows.filter((r) => r.id !== null);
  } else {
    // Published before under this idempotency key: that event and its deliveries (their starts are repeated —
    // a start that exists is a no-op — so a publish cut short before its starts is finished by its retry).
    created = false;
    const existing = await deps.pool.query<{ id: string }>(
      `SELECT id FROM opsflow.webhook_events WHERE idempotency_key = $1 AND coalesce(tenant_id, '') = coalesce($2, '')`,
      [req.idempotencyKey, req.tenantId ?? null],
    );
    eventId = existing.rows[0]!.id;
    const rows = await deps.pool.query<DeliveryStart>(
      `SELECT ${DELIVERY_START_COLUMNS} FROM ${DELIVERY_START_FROM}
       WHERE d.event_id = $1 ORDER BY d.endpoint_id`,
      [eventId],
    );
    deliveries = rows.rows;
  }
  // The event and its deliveries are committed: from here on they are accepted, whatever Temporal says.
  // A start that fails now is left to the reconciler (startStrandedDeliveries) rather than failing a request
  // whose retry would publish the event twice.
  // Starts sent before the answer keep the request's deadline; those sent after it, once answered, their own.
  let answered = false;
  const starts = startAndMark(deps, deliveries, deliveries.length > BULK_FANOUT, () => answered);
  let startFailed: Error | undefined;
  if (opts.answerWithinMs === undefined) startFailed = (await starts).error;
  else {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), opts.answerWithinMs)));
    const first = await Promise.race([starts, late]);
    clearTimeout(timer);
    if (first === 'late') {
      answered = true;
      starts.then(
        (r) =>
          r.error &&
          opts.log?.warn({ err: r.error, eventId }, 'late delivery starts failed; the reconciler starts them'),
        (err: unknown) => opts.log?.warn({ err, eventId }, 'late delivery starts failed; the reconciler starts them'),
      );
    } else startFailed = first.error;
  }
  return {
    eventId,
    deliveries: deliveries.map((d) => ({ id: d.id, endpointId: d.endpoint_id })),
    created,
    startFailed,
  };
}

/** Starts each delivery's workflow (bounded, recorded as they go); those that failed stay unmarked for the reconciler. */
function startAndMark(
  deps: WebhookServiceDeps,
  deliveries: DeliveryStart[],
  bulk: boolean,
  ownDeadline?: () => boolean,
): Promise<StartOutcome> {
  return startAll(deliveries, {
    ownDeadline,
    concurrency: bulk ? deps.bulkStarts : deps.startConcurrency,
    start: (d) => startDelivery(deps, d, bulk),
    mark: (started) => deps.markStarted(started.map((d) => d.id)),
    connection: deps.client.connection,
  });
}

/**
 * The reconciler: starts the workflows of deliveries committed at least `olderThanMs` ago whose start never
 * went through. Idempotent (a workflow that exists is left alone) and safe to run from every worker at once.
 */
export async function startStrandedDeliveries(
  deps: WebhookServiceDeps,
  opts: { olderThanMs: number; limit: number },
): Promise<StartOutcome> {
  const { rows } = await deps.pool.query<DeliveryStart>(
    `SELECT ${DELIVERY_START_COLUMNS} FROM ${DELIVERY_START_FROM}
     WHERE d.workflow_started_at IS NULL AND d.created_at <= now() - ($1::bigint * interval '1 millisecond')
     ORDER BY d.created_at LIMIT $2`,
    [opts.olderThanMs, opts.limit],
  );
  return startAndMark(deps, rows, true);
}
