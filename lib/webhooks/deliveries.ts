/**
 * Deliveries and dead letters as operators read them: pages of deliveries (by status, endpoint, event type,
 * time), one delivery with every attempt and its workflow's live state, and the open dead letters — the API's
 * lists and the console's dead-letter page read them here.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Pool } from '../db.js';
import { page, type CursorKey } from '../pagination.js';
import { deliveryWorkflowId, liveStateQuery, type DeliveryLiveState } from './contract.js';
import { WebhookError } from './service.js';
import { ofTenant } from './tenants.js';

export type DeliveryStatus = 'pending' | 'retrying' | 'delivered' | 'dead_lettered' | 'discarded';

export interface DeliveryRow {
  id: string;
  event_id: string;
  endpoint_id: string;
  event_type: string;
  tenant_id: string | null;
  status: DeliveryStatus;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: Date | null;
  delivered_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface DeliveryView {
  id: string;
  eventId: string;
  endpointId: string;
  eventType: string;
  tenantId: string | null;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export const deliveryView = (d: DeliveryRow): DeliveryView => ({
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

export interface AttemptView {
  attemptNo: number;
  at: string;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  responseBody: string | null;
  outcome: string;
}

export interface DeadLetterView {
  id: string;
  deliveryId: string;
  endpointId: string;
  eventType: string;
  reason: string;
  createdAt: string;
}

export interface DeadLetterRow {
  id: string;
  delivery_id: string;
  endpoint_id: string;
  event_type: string;
  reason: string;
  created_at: Date;
}

const deadLetterView = (r: DeadLetterRow): DeadLetterView => ({
  id: r.id,
  deliveryId: r.delivery_id,
  endpointId: r.endpoint_id,
  eventType: r.event_type,
  reason: r.reason,
  createdAt: r.created_at.toISOString(),
});

export async function deliveryPage(
  pool: Pool,
  f: { status?: DeliveryStatus; endpointId?: string; eventType?: string; since?: Date; tenant?: string },
  q: { after?: CursorKey; limit: number },
): Promise<{ items: DeliveryView[]; nextCursor: string | null }> {
  const { rows } = await pool.query<DeliveryRow>(
    `SELECT * FROM opsflow.webhook_deliveries
     WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR endpoint_id = $2)
       AND ($3::text IS NULL OR event_type = $3) AND ($4::timestamptz IS NULL OR created_at >= $4)
       AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6)) AND ${ofTenant(8)}
     ORDER BY created_at DESC, id DESC LIMIT $7`,
    [
      f.status ?? null,
      f.endpointId ?? null,
      f.eventType ?? null,
      f.since ?? null,
      q.after?.at ?? null,
      q.after?.id ?? null,
      q.limit + 1,
      f.tenant ?? null,
    ],
  );
  const { items, nextCursor } = page(rows, q.limit, (r) => r.created_at);
  return { items: items.map(deliveryView), nextCursor };
}

/** One delivery with every attempt (in place of the count), and its workflow's live state while it runs. */
export async function deliveryDetail(
  deps: { pool: Pool; temporal: Client },
  id: string,
  tenant?: string,
): Promise<Omit<DeliveryView, 'attempts'> & { live: DeliveryLiveState | null; attempts: AttemptView[] }> {
  const { rows } = await deps.pool.query<DeliveryRow>(
    `SELECT * FROM opsflow.webhook_deliveries WHERE id = $1 AND ${ofTenant(2)}`,
    [id, tenant ?? null],
  );
  const d = rows[0];
  if (!d) throw new WebhookError('not_found', `delivery ${id} not found`);
  const attempts = await deps.pool.query<{
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
  return {
    ...deliveryView(d),
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
  };
}

/** The open dead letters, newest first, by endpoint and creation time: one query for the API and the console. */
async function openDeadLetterRows(
  pool: Pool,
  f: { endpointId?: string; since?: Date; until?: Date; tenant?: string },
  after: CursorKey | undefined,
  rows: number,
): Promise<DeadLetterRow[]> {
  const result = await pool.query<DeadLetterRow>(
    `SELECT id, delivery_id, endpoint_id, event_type, reason, created_at FROM opsflow.dead_letters
     WHERE resolved_at IS NULL AND ($1::text IS NULL OR endpoint_id = $1)
       AND ($2::timestamptz IS NULL OR created_at >= $2) AND ($3::timestamptz IS NULL OR created_at < $3)
       AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5)) AND ${ofTenant(7)}
     ORDER BY created_at DESC, id DESC LIMIT $6`,
    [
      f.endpointId ?? null,
      f.since ?? null,
      f.until ?? null,
      after?.at ?? null,
      after?.id ?? null,
      rows,
      f.tenant ?? null,
    ],
  );
  return result.rows;
}

export async function deadLetterPage(
  pool: Pool,
  f: { endpointId?: string; since?: Date; until?: Date; tenant?: string },
  q: { after?: CursorKey; limit: number },
): Promise<{ items: DeadLetterView[]; nextCursor: string | null }> {
  const rows = await openDeadLetterRows(pool, f, q.after, q.limit + 1);
  const { items, nextCursor } = page(rows, q.limit, (r) => r.created_at);
  return { items: items.map(deadLetterView), nextCursor };
}

/** The newest open dead letters and how many are open: the console's dead-letter page. */
export async function openDeadLetters(pool: Pool, limit = 50): Promise<{ items: DeadLetterRow[]; total: number }> {
  const [items, count] = await Promise.all([
    openDeadLetterRows(pool, {}, undefined, limit),
    pool.query<{ n: string }>('SELECT count(*) AS n FROM opsflow.dead_letters WHERE resolved_at IS NULL'),
  ]);
  return { items, total: Number(count.rows[0]!.n) };
}
