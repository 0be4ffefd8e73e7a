/**
 * Every statement on the subscription family's tables (opsflow.subscriptions, subscription_notifications,
 * subscription_audit) that reads or writes one subscription or a page of them: the API's service, the batch import
 * and the activities use it. The counts the console and the metrics show are in ./overview.ts.
 */
import type { Queryable } from '../db.js';
import type { CursorKey } from '../pagination.js';
import {
  refKey,
  subscriptionWorkflowId,
  type SentReminder,
  type SubscriptionDetails,
  type SubscriptionRef,
  type SubscriptionStatus,
  type Urgency,
} from './contract.js';

export interface SubscriptionRow {
  id: string;
  tenant_id: string;
  email: string;
  name: string | null;
  plan: string | null;
  expires_at: Date;
  timezone: string;
  reminder_offsets_ms: string[]; // bigint[] arrives as strings
  send_at: string | null;
  grace_days: number;
  status: SubscriptionStatus;
  cancel_reason: string | null;
  created_at: Date;
  updated_at: Date;
  /** NULL until the workflow's start is recorded (the reconciler starts rows left so). */
  workflow_started_at: Date | null;
  /** Made before ids were per tenant: its workflow id is `subscription:<id>`. */
  legacy_workflow_id: boolean;
}

/** Which subscription a row is. */
export const refOf = (r: { tenant_id: string; id: string }): SubscriptionRef => ({ tenantId: r.tenant_id, id: r.id });

/** The row's workflow id. */
export const rowWorkflowId = (r: { tenant_id: string; id: string; legacy_workflow_id: boolean }) =>
  subscriptionWorkflowId(r.tenant_id, r.id, r.legacy_workflow_id);

/** Pairs of (tenant, id) as two arrays, for `(tenant_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`. */
const pairs = (refs: SubscriptionRef[]) => [refs.map((r) => r.tenantId), refs.map((r) => r.id)];
const PAIRS = '(tenant_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))';

export function detailsFromRow(r: SubscriptionRow): SubscriptionDetails {
  return {
    tenantId: r.tenant_id,
    email: r.email,
    name: r.name,
    plan: r.plan,
    expiresAt: r.expires_at.toISOString(),
    timezone: r.timezone,
    reminderOffsetsMs: r.reminder_offsets_ms.map(Number),
    sendAt: r.send_at,
    graceDays: r.grace_days,
  };
}

/** The row's columns from a subscription's details, as jsonb_to_recordset reads them. */
const columns = (id: string, d: SubscriptionDetails) => ({
  id,
  tenant_id: d.tenantId,
  email: d.email,
  name: d.name,
  plan: d.plan,
  expires_at: d.expiresAt,
  timezone: d.timezone,
  reminder_offsets_ms: d.reminderOffsetsMs,
  send_at: d.sendAt,
  grace_days: d.graceDays,
});

const RECORDSET = `jsonb_to_recordset($1::jsonb) AS x(id text, tenant_id text, email text, name text, plan text,
  expires_at timestamptz, timezone text, reminder_offsets_ms bigint[], send_at text, grace_days double precision)`;

export type AuditAction = 'created' | 'updated' | 'imported' | 'renewed' | 'notified' | SubscriptionStatus;

export async function audit(
  db: Queryable,
  ref: SubscriptionRef | null,
  action: AuditAction | 'sweep',
  details: unknown,
) {
  await db.query(
    `INSERT INTO opsflow.subscription_audit (tenant_id, subscription_id, action, details) VALUES ($1, $2, $3, $4)`,
    [ref?.tenantId ?? null, ref?.id ?? null, action, JSON.stringify(details)],
  );
}

export async function subscriptionRow(db: Queryable, ref: SubscriptionRef): Promise<SubscriptionRow | undefined> {
  const { rows } = await db.query<SubscriptionRow>(
    'SELECT * FROM opsflow.subscriptions WHERE tenant_id = $1 AND id = $2',
    [ref.tenantId, ref.id],
  );
  return rows[0];
}

/** Every tenant's subscription with this id (an operator's key naming no tenant), by tenant. */
export async function subscriptionRowsWithId(db: Queryable, id: string): Promise<SubscriptionRow[]> {
  const { rows } = await db.query<SubscriptionRow>(
    'SELECT * FROM opsflow.subscriptions WHERE id = $1 ORDER BY tenant_id LIMIT 20',
    [id],
  );
  return rows;
}

/** The id a list cursor carries: ids are per tenant, so the tenant too. */
export const listCursorId = (r: { id: string; tenant_id: string }) => `${r.id}\u0000${r.tenant_id}`;

/** Rows by (tenant, id), locked for the rest of the caller's transaction; keyed by refKey. */
export async function lockSubscriptionRows(
  db: Queryable,
  refs: SubscriptionRef[],
): Promise<Map<string, SubscriptionRow>> {
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT * FROM opsflow.subscriptions WHERE ${PAIRS} FOR UPDATE`,
    pairs(refs),
  );
  return new Map(rows.map((r) => [refKey(r.tenant_id, r.id), r]));
}

/** A PUT's row: created, or replaced with these details and status. */
export async function upsertSubscriptionRow(
  db: Queryable,
  id: string,
  details: SubscriptionDetails,
  status: SubscriptionStatus,
): Promise<void> {
  await db.query(
    `INSERT INTO opsflow.subscriptions (id, tenant_id, email, name, plan, expires_at, timezone, reminder_offsets_ms, send_at, grace_days, status)
     SELECT id, tenant_id, email, name, plan, expires_at, timezone, reminder_offsets_ms, send_at, grace_days, $2
     FROM ${RECORDSET}
     ON CONFLICT (tenant_id, id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
       plan = EXCLUDED.plan, expires_at = EXCLUDED.expires_at, timezone = EXCLUDED.timezone,
       reminder_offsets_ms = EXCLUDED.reminder_offsets_ms, send_at = EXCLUDED.send_at,
       grace_days = EXCLUDED.grace_days, status = EXCLUDED.status, updated_at = now()`,
    [JSON.stringify([columns(id, details)]), status],
  );
}

/** An import's new rows (active), one statement; subscriptions that exist are left alone and not returned. */
export async function insertSubscriptionRows(
  db: Queryable,
  items: Array<{ id: string; details: SubscriptionDetails }>,
): Promise<SubscriptionRow[]> {
  const { rows } = await db.query<SubscriptionRow>(
    `INSERT INTO opsflow.subscriptions
       (id, tenant_id, email, name, plan, expires_at, timezone, reminder_offsets_ms, send_at, grace_days, status)
     SELECT id, tenant_id, email, name, plan, expires_at, timezone, reminder_offsets_ms, send_at, grace_days, 'active'
     FROM ${RECORDSET}
     ON CONFLICT (tenant_id, id) DO NOTHING
     RETURNING *`,
    [JSON.stringify(items.map((i) => columns(i.id, i.details)))],
  );
  return rows;
}

/** The audit rows of an import, one statement. */
export async function auditImported(db: Queryable, items: Array<{ id: string; details: SubscriptionDetails }>) {
  await db.query(
    `INSERT INTO opsflow.subscription_audit (tenant_id, subscription_id, action, details)
     SELECT details->>'tenantId', id, 'imported', details FROM jsonb_to_recordset($1::jsonb) AS x(id text, details jsonb)`,
    [JSON.stringify(items)],
  );
}

export async function recordRenewal(db: Queryable, ref: SubscriptionRef, expiresAt: string): Promise<void> {
  await db.query(
    `UPDATE opsflow.subscriptions SET expires_at = $3, status = 'active', updated_at = now()
     WHERE tenant_id = $1 AND id = $2`,
    [ref.tenantId, ref.id, expiresAt],
  );
}

/** The workflow's status on the row; false when the row had it already (a retried transition). */
export async function setSubscriptionStatus(
  db: Queryable,
  ref: SubscriptionRef,
  status: SubscriptionStatus,
  reason: string | undefined,
): Promise<boolean> {
  const changed = await db.query(
    `UPDATE opsflow.subscriptions SET status = $3, cancel_reason = COALESCE($4, cancel_reason), updated_at = now()
     WHERE tenant_id = $1 AND id = $2 AND status IS DISTINCT FROM $3`,
    [ref.tenantId, ref.id, status, reason ?? null],
  );
  return (changed.rowCount ?? 0) > 0;
}

export async function markSubscriptionsStarted(db: Queryable, refs: SubscriptionRef[]): Promise<void> {
  await db.query(
    `UPDATE opsflow.subscriptions SET workflow_started_at = now() WHERE ${PAIRS} AND workflow_started_at IS NULL`,
    pairs(refs),
  );
}

/** Rows committed at least `olderThanMs` ago whose workflow start was never recorded, oldest first. */
export async function unstartedSubscriptionRows(
  db: Queryable,
  olderThanMs: number,
  limit: number,
): Promise<SubscriptionRow[]> {
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT * FROM opsflow.subscriptions
     WHERE workflow_started_at IS NULL AND created_at <= now() - ($1::bigint * interval '1 millisecond')
     ORDER BY created_at LIMIT $2`,
    [olderThanMs, limit],
  );
  return rows;
}

/** Active and grace rows in (tenant, id) order after `after` (the sweep's pages). */
export async function liveSubscriptionRows(db: Queryable, after: SubscriptionRef | undefined, limit: number) {
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT * FROM opsflow.subscriptions
     WHERE status IN ('active', 'grace') AND ($1::text IS NULL OR (tenant_id, id) > ($1, $2))
     ORDER BY tenant_id, id LIMIT $3`,
    [after?.tenantId ?? null, after?.id ?? '', limit],
  );
  return rows;
}

/** Active subscriptions expiring within `windowMs`, soonest first. */
export async function expiringSubscriptionRows(db: Queryable, windowMs: number): Promise<SubscriptionRow[]> {
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT * FROM opsflow.subscriptions WHERE status = 'active' AND expires_at > now()
       AND expires_at <= now() + ($1::bigint * interval '1 millisecond') ORDER BY expires_at, id`,
    [windowMs],
  );
  return rows;
}

export interface SubscriptionFilter {
  status?: SubscriptionStatus;
  tenantId?: string;
  /** Active-or-not, expiring after now and within this many milliseconds. */
  expiringWithinMs?: number;
}

/**
 * One page of the list, soonest expiry first: the keyset is (expires_at, id, tenant_id), the cursor's id being
 * `<id>\0<tenant>` (listCursorId; a cursor with an id alone goes on from that id's first tenant). Takes `limit + 1` rows.
 */
export async function subscriptionRowsPage(
  db: Queryable,
  filter: SubscriptionFilter,
  after: CursorKey | undefined,
  limit: number,
): Promise<SubscriptionRow[]> {
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT * FROM opsflow.subscriptions
     WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR tenant_id = $2)
       AND ($3::bigint IS NULL OR (expires_at > now() AND expires_at <= now() + ($3::bigint * interval '1 millisecond')))
       AND ($4::timestamptz IS NULL OR (expires_at, id, tenant_id) > ($4, $5, $7))
     ORDER BY expires_at, id, tenant_id LIMIT $6`,
    [
      filter.status ?? null,
      filter.tenantId ?? null,
      filter.expiringWithinMs ?? null,
      after?.at ?? null,
      after?.id.split('\u0000')[0] ?? null,
      limit + 1,
      after?.id.split('\u0000')[1] ?? '',
    ],
  );
  return rows;
}

/**
 * Whether `expiresAt` is still the subscription's period and it is not canceled, holding the row (FOR SHARE) until
 * the caller's transaction ends: a renewal or cancellation that lands while a reminder waits for its retry (an SMTP
 * outage) makes the retry send nothing, and one that comes during the send waits for it.
 */
export async function periodStillCurrent(db: Queryable, ref: SubscriptionRef, expiresAt: string): Promise<boolean> {
  const { rows } = await db.query<{ current: boolean }>(
    // Within a millisecond: the workflow carries the expiry as an ISO string, the row may hold microseconds.
    `SELECT abs(extract(epoch FROM expires_at - $3::timestamptz)) < 0.001 AND status <> 'canceled' AS current
     FROM opsflow.subscriptions WHERE tenant_id = $1 AND id = $2 FOR SHARE`,
    [ref.tenantId, ref.id, expiresAt],
  );
  return rows[0]?.current === true;
}

/** Claims a reminder of one period (false: it was claimed before — a retry, a crash after the commit). */
export async function claimNotification(
  db: Queryable,
  n: SubscriptionRef & { expiresAt: string; milestone: string; urgency: string },
): Promise<boolean> {
  const inserted = await db.query(
    `INSERT INTO opsflow.subscription_notifications (tenant_id, subscription_id, expires_at, milestone, urgency)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
    [n.tenantId, n.id, n.expiresAt, n.milestone, n.urgency],
  );
  return (inserted.rowCount ?? 0) > 0;
}

export async function recordNotificationMessage(
  db: Queryable,
  n: SubscriptionRef & { expiresAt: string; milestone: string },
  messageId: string,
): Promise<void> {
  await db.query(
    `UPDATE opsflow.subscription_notifications SET message_id = $5
     WHERE tenant_id = $1 AND subscription_id = $2 AND expires_at = $3 AND milestone = $4`,
    [n.tenantId, n.id, n.expiresAt, n.milestone, messageId],
  );
}

/** What one period of a subscription has already sent. */
export async function sentReminders(db: Queryable, ref: SubscriptionRef, expiresAt: Date): Promise<SentReminder[]> {
  const { rows } = await db.query<{ milestone: string; urgency: Urgency; sent_at: Date }>(
    `SELECT milestone, urgency, sent_at FROM opsflow.subscription_notifications
     WHERE tenant_id = $1 AND subscription_id = $2 AND expires_at = $3`,
    [ref.tenantId, ref.id, expiresAt],
  );
  return rows.map((n) => ({
    milestone: n.milestone,
    urgency: n.urgency,
    sentAt: n.sent_at.toISOString(),
    outcome: 'sent',
  }));
}
