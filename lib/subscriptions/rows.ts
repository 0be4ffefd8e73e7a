import type { SubscriptionDetails, SubscriptionStatus } from './contract.js';

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
}

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
