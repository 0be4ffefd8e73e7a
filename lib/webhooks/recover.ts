/**
 * Recover: "send this endpoint everything since 14:00 again" (Svix's recover), as one tracked run.
 *
 * A request names an endpoint and a window; `failed` (the default) takes the window's dead-lettered and
 * still-retrying deliveries, `all` the delivered and discarded ones too (a receiver that answered 200 and lost
 * them). The window's size is counted before anything starts (over WEBHOOK_RECOVER_MAX_DELIVERIES: 422); the
 * row in opsflow.webhook_recovers is its progress and its record, and one workflow (`webhook-recover:<id>`)
 * works through it a batch at a time, oldest first, each delivery sent again with its own webhook-id (a running
 * one cuts its wait, a finished one runs again). A rate-limited endpoint's recover is paced: the next batch waits
 * while the endpoint's send slots are booked more than RECOVER_HORIZON_MS ahead, so the run never parks more
 * than that much work on the endpoint's queue; an unlimited endpoint's batches go a second apart (at most 100
 * deliveries a second). One recover runs per endpoint at a time; a canceled one stops before its next batch.
 *
 * A batch cut short (a worker lost) is done again from the row's cursor, so a delivery may be sent twice — with
 * the same webhook-id, which receivers deduplicate on; none is skipped.
 */
import { WorkflowIdReusePolicy } from '@temporalio/client';
import type { Pool } from '../db.js';
import { newId } from '../ids.js';
import { page, type CursorKey } from '../pagination.js';
import { OpsKind, OpsStatus, WebhookEndpointId } from '../search-attributes.js';
import {
  DELIVERY_START_COLUMNS,
  DELIVERY_START_FROM,
  WebhookError,
  type DeliveryStart,
  type WebhookServiceDeps,
} from './service.js';
import { signalOrStart } from './redrive.js';
import { ofTenant } from './tenants.js';

export const WEBHOOK_RECOVER_WORKFLOW = 'webhookRecover';
export const recoverWorkflowId = (id: string) => `webhook-recover:${id}`;

export const RECOVER_WHICH = ['failed', 'all'] as const;
export type RecoverWhich = (typeof RECOVER_WHICH)[number];
export type RecoverState = 'running' | 'finished' | 'failed' | 'canceled';

const STATUSES: Record<RecoverWhich, string[]> = {
  failed: ['dead_lettered', 'retrying'],
  all: ['dead_lettered', 'retrying', 'delivered', 'discarded'],
};

/** Deliveries sent again per batch (a rate-limited endpoint's: half a second of its limit, fed steadily). */
export const RECOVER_BATCH = 100;
/**
 * A rate-limited endpoint's next batch waits while its send slots are booked further ahead than this: the run feeds
 * the endpoint at its own pace instead of starting thousands of workflows that would only wait.
 */
export const RECOVER_HORIZON_MS = 2_000;
/** An unlimited endpoint's batches are this far apart: a large recover starts at most 100 deliveries a second. */
export const RECOVER_UNLIMITED_PAUSE_MS = 1_000;

interface RecoverRow {
  id: string;
  endpoint_id: string;
  tenant_id: string | null;
  since: Date;
  until: Date;
  which: RecoverWhich;
  requested_by: string;
  state: RecoverState;
  total: number;
  resent: number;
  cursor_at: Date | null;
  cursor_id: string | null;
  error: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

export interface RecoverView {
  id: string;
  endpointId: string;
  tenantId: string | null;
  since: string;
  until: string;
  status: RecoverWhich;
  requestedBy: string;
  state: RecoverState;
  /** Deliveries the window held when the recover was asked for. */
  total: number;
  /** Sent again so far. */
  resent: number;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

const recoverView = (r: RecoverRow): RecoverView => ({
  id: r.id,
  endpointId: r.endpoint_id,
  tenantId: r.tenant_id,
  since: r.since.toISOString(),
  until: r.until.toISOString(),
  status: r.which,
  requestedBy: r.requested_by,
  state: r.state,
  total: r.total,
  resent: r.resent,
  error: r.error,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  finishedAt: r.finished_at?.toISOString() ?? null,
});

export interface RecoverRequest {
  endpointId: string;
  since: Date;
  /** Default: now. */
  until?: Date;
  which?: RecoverWhich;
  /** Who asks, as records name it (`name (id)`). */
  by: string;
  /** A tenant's request: only that tenant's endpoint. */
  tenant?: string;
  maxDeliveries: number;
}

/** Counts the window, records the recover and starts its run; refusals are WebhookErrors. */
export async function startRecover(deps: WebhookServiceDeps, req: RecoverRequest): Promise<RecoverView> {
  const now = new Date();
  const until = req.until && req.until < now ? req.until : now;
  const which = req.which ?? 'failed';
  if (req.since >= until) {
    throw new WebhookError(
      'unprocessable',
      `since (${req.since.toISOString()}) must be before until (${until.toISOString()})`,
      [{ path: 'since', message: 'not before until (or now)' }],
    );
  }
  const { rows: endpoints } = await deps.pool.query<{ enabled: boolean; tenant_id: string | null }>(
    `SELECT enabled, tenant_id FROM opsflow.webhook_endpoints
     WHERE id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR tenant_id = $2)`,
    [req.endpointId, req.tenant ?? null],
  );
  const ep = endpoints[0];
  if (!ep) throw new WebhookError('not_found', `endpoint ${req.endpointId} not found`);
  if (!ep.enabled) throw new WebhookError('conflict', `endpoint ${req.endpointId} is disabled: enable it first`);
  const { rows: counted } = await deps.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM opsflow.webhook_deliveries
     WHERE endpoint_id = $1 AND created_at >= $2 AND created_at < $3 AND status = ANY ($4)`,
    [req.endpointId, req.since, until, STATUSES[which]],
  );
  const total = counted[0]!.n;
  if (total > req.maxDeliveries) {
    throw new WebhookError(
      'unprocessable',
      `the window holds ${total} deliveries to recover, more than WEBHOOK_RECOVER_MAX_DELIVERIES (${req.maxDeliveries}): narrow it, or recover it in parts`,
      [{ path: 'since', message: `${total} deliveries > ${req.maxDeliveries}` }],
    );
  }
  const id = newId('rcv');
  let row: RecoverRow;
  try {
    const { rows } = await deps.pool.query<RecoverRow>(
      `INSERT INTO opsflow.webhook_recovers (id, endpoint_id, tenant_id, since, until, which, requested_by, total)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [id, req.endpointId, ep.tenant_id, req.since, until, which, req.by, total],
    );
    row = rows[0]!;
  } catch (err) {
    if ((err as { constraint?: string }).constraint !== 'webhook_recovers_running') throw err;
    const running = await deps.pool.query<{ id: string }>(
      `SELECT id FROM opsflow.webhook_recovers WHERE endpoint_id = $1 AND state = 'running'`,
      [req.endpointId],
    );
    throw new WebhookError(
      'conflict',
      `endpoint ${req.endpointId} has a recover running (${running.rows[0]?.id ?? 'just finished: ask again'}); cancel it or wait for it to end`,
    );
  }
  try {
    await deps.client.workflow.start(WEBHOOK_RECOVER_WORKFLOW, {
      taskQueue: deps.taskQueue,
      workflowId: recoverWorkflowId(id),
      args: [{ recoverId: id }],
      // Bulk work: the run and its activities (which inherit it) go after what people wait for.
      priority: { priorityKey: deps.bulkPriority },
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [
        { key: OpsKind, value: 'webhook-recover' },
        { key: OpsStatus, value: 'running' },
        { key: WebhookEndpointId, value: req.endpointId },
      ],
      staticSummary: `recover ${which} deliveries of ${req.endpointId} since ${req.since.toISOString()}`,
    });
  } catch (err) {
    // Nothing was sent: the recover is not left behind as running (it would block the next one).
    await deps.pool.query('DELETE FROM opsflow.webhook_recovers WHERE id = $1', [id]);
    throw err;
  }
  return recoverView(row);
}

export async function getRecover(pool: Pool, id: string, tenant?: string): Promise<RecoverView> {
  const { rows } = await pool.query<RecoverRow>(
    `SELECT * FROM opsflow.webhook_recovers WHERE id = $1 AND ${ofTenant(2)}`,
    [id, tenant ?? null],
  );
  if (!rows[0]) throw new WebhookError('not_found', `recover ${id} not found`);
  return recoverView(rows[0]);
}

/** Recovers, newest first; optionally one endpoint's. */
export async function recoverPage(
  pool: Pool,
  f: { endpointId?: string; tenant?: string },
  q: { after?: CursorKey; limit: number },
): Promise<{ items: RecoverView[]; nextCursor: string | null }> {
  const { rows } = await pool.query<RecoverRow>(
    `SELECT * FROM opsflow.webhook_recovers
     WHERE ($1::text IS NULL OR endpoint_id = $1) AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
       AND ${ofTenant(5)}
     ORDER BY created_at DESC, id DESC LIMIT $4`,
    [f.endpointId ?? null, q.after?.at ?? null, q.after?.id ?? null, q.limit + 1, f.tenant ?? null],
  );
  const { items, nextCursor } = page(rows, q.limit, (r) => r.created_at);
  return { items: items.map(recoverView), nextCursor };
}

/** Ends a running recover in `state`; undefined when it was no longer running. */
async function finish(pool: Pool, id: string, state: RecoverState, error?: string): Promise<RecoverRow | undefined> {
  const { rows } = await pool.query<RecoverRow>(
    `UPDATE opsflow.webhook_recovers SET state = $2, error = $3, finished_at = now(), updated_at = now()
     WHERE id = $1 AND state = 'running' RETURNING *`,
    [id, state, error ?? null],
  );
  return rows[0];
}

const rowOf = async (pool: Pool, id: string) =>
  (await pool.query<RecoverRow>('SELECT * FROM opsflow.webhook_recovers WHERE id = $1', [id])).rows[0]!;

/** Stops a running recover before its next batch (what it sent stays sent). */
export async function cancelRecover(pool: Pool, id: string, by: string, tenant?: string): Promise<RecoverView> {
  const current = await getRecover(pool, id, tenant);
  const canceled = await finish(pool, id, 'canceled', `canceled by ${by}`);
  if (!canceled) throw new WebhookError('conflict', `recover ${id} is ${current.state}, not running`);
  return recoverView(canceled);
}

export interface RecoverStep {
  /** The run is over (finished, failed or canceled). */
  done: boolean;
  state: RecoverState;
  resent: number;
  total: number;
  /** Wait this long before the next batch (a rate-limited endpoint's slots are booked far ahead). */
  waitMs?: number;
}

const step = (r: RecoverRow, extra: Partial<RecoverStep> = {}): RecoverStep => ({
  done: r.state !== 'running',
  state: r.state,
  resent: r.resent,
  total: r.total,
  ...extra,
});

/**
 * The run's one activity: sends the next batch of the window again and moves the cursor past it. Safe to repeat
 * (a batch not recorded is sent again from the same cursor).
 */
export async function recoverNextBatch(deps: WebhookServiceDeps, id: string): Promise<RecoverStep> {
  const { rows } = await deps.pool.query<
    RecoverRow & { enabled: boolean | null; deleted_at: Date | null; rate: number | null; booked_ms: number | null }
  >(
    `SELECT r.*, ep.enabled, ep.deleted_at, ep.rate_limit_per_second AS rate,
       (extract(epoch FROM p.next_slot_at - clock_timestamp()) * 1000)::float8 AS booked_ms
     FROM opsflow.webhook_recovers r
     JOIN opsflow.webhook_endpoints ep ON ep.id = r.endpoint_id
     LEFT JOIN opsflow.endpoint_pacing p ON p.endpoint_id = r.endpoint_id
     WHERE r.id = $1`,
    [id],
  );
  const r = rows[0];
  if (!r) throw new WebhookError('not_found', `recover ${id} not found`);
  if (r.state !== 'running') return step(r);
  if (r.deleted_at || !r.enabled) {
    const why = `endpoint ${r.endpoint_id} was ${r.deleted_at ? 'deleted' : 'disabled'}`;
    return step((await finish(deps.pool, id, 'failed', why)) ?? (await rowOf(deps.pool, id)));
  }
  if (r.rate !== null && r.booked_ms !== null && r.booked_ms > RECOVER_HORIZON_MS) {
    // Looked at again within 10 s, so a cancel is not kept waiting behind a long sleep.
    return step(r, { waitMs: Math.round(Math.min(r.booked_ms - RECOVER_HORIZON_MS * 0.75, 10_000)) });
  }
  const limit = r.rate !== null ? Math.min(RECOVER_BATCH, Math.ceil(r.rate / 2)) : RECOVER_BATCH;
  const batch = await deps.pool.query<DeliveryStart & { status: string; created_at: Date }>(
    `SELECT ${DELIVERY_START_COLUMNS}, d.status, d.created_at FROM ${DELIVERY_START_FROM}
     WHERE d.endpoint_id = $1 AND d.created_at >= $2 AND d.created_at < $3 AND d.status = ANY ($4)
       AND ($5::timestamptz IS NULL OR (d.created_at, d.id) > ($5, $6))
     ORDER BY d.created_at, d.id LIMIT $7`,
    [r.endpoint_id, r.since, r.until, STATUSES[r.which], r.cursor_at, r.cursor_id, limit],
  );
  const items = batch.rows;
  if (items.length > 0) {
    const by = `recover ${id} (${r.requested_by})`;
    await deps.pool.query(
      `UPDATE opsflow.dead_letters SET resolved_at = now(), resolution = 'redriven', resolved_by = $2
       WHERE delivery_id = ANY ($1) AND resolved_at IS NULL`,
      [items.filter((d) => d.status === 'dead_lettered').map((d) => d.id), by],
    );
    // Sent again a few at a time; any failure fails the batch, which is repeated from the same cursor.
    const lane = deps.bulkStarts.lane();
    await Promise.all(items.map((d) => lane(() => signalOrStart(deps, d, { bulk: true }))));
  }
  const last = items.at(-1);
  const { rows: after } = await deps.pool.query<RecoverRow>(
    `UPDATE opsflow.webhook_recovers SET resent = resent + $2, cursor_at = coalesce($3, cursor_at),
       cursor_id = coalesce($4, cursor_id), updated_at = now(),
       state = CASE WHEN $5 THEN 'finished' ELSE state END, finished_at = CASE WHEN $5 THEN now() END
     WHERE id = $1 AND state = 'running' RETURNING *`,
    [id, items.length, last?.created_at ?? null, last?.id ?? null, items.length < limit],
  );
  // Canceled while this batch went out: what it sent stays sent and counted in the answer, not the row.
  if (!after[0]) return step(await rowOf(deps.pool, id));
  return step(after[0], after[0].state === 'running' && r.rate === null ? { waitMs: RECOVER_UNLIMITED_PAUSE_MS } : {});
}
