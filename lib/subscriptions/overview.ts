/**
 * The subscription family's figures for operators: counts by status and of expiries for the metrics, and the
 * console's overview (expiring by urgency, reminders sent today, recent expiries). Read-only; every statement that
 * reads or writes one subscription is in ./rows.ts.
 */
import type { Pool } from '../db.js';
import type { SubscriptionStatus } from './contract.js';

/** Subscriptions per status (every status present, zero when none). */
export async function countByStatus(pool: Pool): Promise<Record<SubscriptionStatus, number>> {
  const counts: Record<SubscriptionStatus, number> = { active: 0, grace: 0, expired: 0, canceled: 0 };
  const { rows } = await pool.query<{ status: SubscriptionStatus; n: string }>(
    'SELECT status, count(*) AS n FROM opsflow.subscriptions GROUP BY status',
  );
  for (const r of rows) counts[r.status] = Number(r.n);
  return counts;
}

export async function countExpiringWithin(pool: Pool, windowMs: number): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM opsflow.subscriptions WHERE status = 'active' AND expires_at > now()
       AND expires_at <= now() + ($1::bigint * interval '1 millisecond')`,
    [windowMs],
  );
  return Number(rows[0]?.n ?? 0);
}

export interface SubscriptionItem {
  id: string;
  tenant_id: string;
  legacy_workflow_id: boolean;
  email: string;
  name: string | null;
  plan: string | null;
  status: string;
  expires_at: Date;
}

/** The console's page: expiring in the next 7 days by urgency, reminders sent today (in `timezone`), expiries. */
export async function subscriptionsOverview(pool: Pool, timezone: string) {
  const [urgency, expiring, reminders, remindersList, expired] = await Promise.all([
    pool.query<{ urgency: string; n: string }>(
      `SELECT CASE WHEN expires_at < now() + interval '1 day' THEN 'within 1 day'
                   WHEN expires_at < now() + interval '3 days' THEN 'within 3 days'
                   ELSE 'within 7 days' END AS urgency, count(*) AS n
       FROM opsflow.subscriptions
       WHERE status = 'active' AND expires_at >= now() AND expires_at < now() + interval '7 days' GROUP BY 1`,
    ),
    pool.query<SubscriptionItem>(
      `SELECT id, tenant_id, legacy_workflow_id, email, name, plan, status, expires_at FROM opsflow.subscriptions
       WHERE status = 'active' AND expires_at >= now() AND expires_at < now() + interval '7 days'
       ORDER BY expires_at, id LIMIT 100`,
    ),
    pool.query<{ milestone: string; n: string }>(
      `SELECT milestone, count(*) AS n FROM opsflow.subscription_notifications
       WHERE sent_at >= (date_trunc('day', now() AT TIME ZONE $1) AT TIME ZONE $1) GROUP BY 1 ORDER BY 1`,
      [timezone],
    ),
    pool.query<{
      subscription_id: string;
      tenant_id: string;
      legacy_workflow_id: boolean;
      milestone: string;
      urgency: string;
      sent_at: Date;
    }>(
      `SELECT n.subscription_id, n.tenant_id, s.legacy_workflow_id, n.milestone, n.urgency, n.sent_at
       FROM opsflow.subscription_notifications n
       JOIN opsflow.subscriptions s ON s.tenant_id = n.tenant_id AND s.id = n.subscription_id
       WHERE n.sent_at >= (date_trunc('day', now() AT TIME ZONE $1) AT TIME ZONE $1)
       ORDER BY n.sent_at DESC LIMIT 50`,
      [timezone],
    ),
    pool.query<SubscriptionItem>(
      `SELECT id, tenant_id, legacy_workflow_id, email, name, plan, status, expires_at FROM opsflow.subscriptions
       WHERE status IN ('grace', 'expired') ORDER BY expires_at DESC, id LIMIT 30`,
    ),
  ]);
  const byUrgency: Record<string, number> = { 'within 1 day': 0, 'within 3 days': 0, 'within 7 days': 0 };
  for (const r of urgency.rows) byUrgency[r.urgency] = Number(r.n);
  return {
    byUrgency,
    expiring: expiring.rows,
    remindersToday: Object.fromEntries(reminders.rows.map((r) => [r.milestone, Number(r.n)])),
    remindersList: remindersList.rows,
    recentExpiries: expired.rows,
  };
}
