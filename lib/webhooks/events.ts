/**
 * Finding what was sent: the events published (opsflow.webhook_events), newest first with filters and keyset
 * pages, and one event with its payload and every delivery it made. A tenant's request sees only its tenant's
 * events.
 */
import type { Pool } from '../db.js';
import { formatDuration } from '../durations.js';
import { page, type CursorKey } from '../pagination.js';
import { deliveryView, type DeliveryRow, type DeliveryStatus, type DeliveryView } from './deliveries.js';
import { WebhookError } from './service.js';

interface EventRow {
  id: string;
  type: string;
  tenant_id: string | null;
  idempotency_key: string | null;
  channels: string[] | null;
  retry_schedule_ms: number[] | null;
  created_at: Date;
  deliveries: Partial<Record<DeliveryStatus, number>> | null;
}

export interface EventView {
  id: string;
  type: string;
  tenantId: string | null;
  idempotencyKey: string | null;
  channels: string[] | null;
  /** The event's own retry schedule, if it was published with one. */
  retrySchedule: string[] | null;
  createdAt: string;
  /** Its deliveries by status now. */
  deliveryCounts: Partial<Record<DeliveryStatus, number>>;
}

const eventView = (r: EventRow): EventView => ({
  id: r.id,
  type: r.type,
  tenantId: r.tenant_id,
  idempotencyKey: r.idempotency_key,
  channels: r.channels,
  retrySchedule: r.retry_schedule_ms?.map(formatDuration) ?? null,
  createdAt: r.created_at.toISOString(),
  deliveryCounts: r.deliveries ?? {},
});

const EVENT_COLUMNS = `e.id, e.type, e.tenant_id, e.idempotency_key, e.channels, e.retry_schedule_ms, e.created_at,
  (SELECT jsonb_object_agg(s.status, s.n) FROM
     (SELECT status, count(*)::int AS n FROM opsflow.webhook_deliveries WHERE event_id = e.id GROUP BY status) s
  ) AS deliveries`;

export interface EventFilter {
  /** An exact type, or a prefix ending in `.*` (`invoice.*`). */
  type?: string;
  tenant?: string;
  since?: Date;
  until?: Date;
}

/** Events, newest first. */
export async function eventPage(
  pool: Pool,
  f: EventFilter,
  q: { after?: CursorKey; limit: number },
): Promise<{ items: EventView[]; nextCursor: string | null }> {
  const prefix = f.type?.endsWith('.*') ? f.type.slice(0, -1) : undefined;
  const { rows } = await pool.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM opsflow.webhook_events e
     WHERE ($1::text IS NULL OR e.type = $1) AND ($2::text IS NULL OR starts_with(e.type, $2))
       AND ($3::text IS NULL OR e.tenant_id = $3)
       AND ($4::timestamptz IS NULL OR e.created_at >= $4) AND ($5::timestamptz IS NULL OR e.created_at < $5)
       AND ($6::timestamptz IS NULL OR (e.created_at, e.id) < ($6, $7))
     ORDER BY e.created_at DESC, e.id DESC LIMIT $8`,
    [
      prefix === undefined ? (f.type ?? null) : null,
      prefix ?? null,
      f.tenant ?? null,
      f.since ?? null,
      f.until ?? null,
      q.after?.at ?? null,
      q.after?.id ?? null,
      q.limit + 1,
    ],
  );
  const { items, nextCursor } = page(rows, q.limit, (r) => r.created_at);
  return { items: items.map(eventView), nextCursor };
}

/** One event: what it carried (the `data` of the body every attempt sent and signed) and each delivery it made. */
export async function eventDetail(
  pool: Pool,
  id: string,
  tenant?: string,
): Promise<EventView & { payload: unknown; deliveries: DeliveryView[] }> {
  const { rows } = await pool.query<EventRow & { body: string }>(
    `SELECT ${EVENT_COLUMNS}, e.body FROM opsflow.webhook_events e
     WHERE e.id = $1 AND ($2::text IS NULL OR e.tenant_id = $2)`,
    [id, tenant ?? null],
  );
  const e = rows[0];
  if (!e) throw new WebhookError('not_found', `event ${id} not found`);
  const deliveries = await pool.query<DeliveryRow>(
    'SELECT * FROM opsflow.webhook_deliveries WHERE event_id = $1 ORDER BY created_at, id',
    [id],
  );
  return {
    ...eventView(e),
    payload: (JSON.parse(e.body) as { data?: unknown }).data ?? null,
    deliveries: deliveries.rows.map(deliveryView),
  };
}
