/** The subscription family's contract: API, worker and schedules agree on these. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export const SUBSCRIPTION_WORKFLOW = 'subscriptionLifecycle';
export const SUBSCRIPTION_SWEEP_WORKFLOW = 'subscriptionSweep';
/**
 * A subscription's workflow id: `subscription:<tenant, URI-encoded>/<id>` (ids are per tenant). `legacy`: one made
 * before ids were per tenant, whose workflow keeps the id it started with, `subscription:<id>`.
 */
export const subscriptionWorkflowId = (tenantId: string, id: string, legacy = false) =>
  legacy ? `subscription:${id}` : `subscription:${encodeURIComponent(tenantId)}/${id}`;

/** Which subscription: ids are per tenant. */
export interface SubscriptionRef {
  tenantId: string;
  id: string;
}

/** A map key of a (tenant, id) pair. */
export const refKey = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;

export const DEFAULT_REMINDER_OFFSETS = ['7d', '3d', '1d'] as const;
export const DEFAULT_SEND_AT = '09:00';

export type SubscriptionStatus = 'active' | 'grace' | 'expired' | 'canceled';
export type Urgency = 'medium' | 'high' | 'critical';

/** Everything a period's plan depends on; plain JSON (it is carried across continue-as-new). */
export interface SubscriptionDetails {
  tenantId: string;
  email: string;
  name: string | null;
  plan: string | null;
  /** ISO 8601. */
  expiresAt: string;
  timezone: string;
  reminderOffsetsMs: number[];
  /** Local "HH:MM" reminders are moved to; null sends at the exact offset. */
  sendAt: string | null;
  graceDays: number;
}

export interface PlannedReminder {
  milestone: string;
  offsetMs: number;
  urgency: Urgency;
  /** ISO instant. */
  at: string;
}

export interface PeriodPlan {
  reminders: PlannedReminder[];
  /** When grace ends and the subscription expires (expiresAt + graceDays). */
  expiresAt: string;
  graceEndsAt: string;
}

export interface SentReminder {
  milestone: string;
  urgency: Urgency;
  sentAt: string;
  /** 'sent', or 'skipped' when created inside a later window. */
  outcome: 'sent' | 'skipped';
}

export interface SubscriptionState {
  details: SubscriptionDetails;
  status: SubscriptionStatus;
  plan: PeriodPlan;
  reminders: SentReminder[];
  cancelReason?: string;
}

export interface SubscriptionInput {
  subscriptionId: string;
  /** A new subscription's details, planned by the API; or the state carried by continue-as-new. */
  state: SubscriptionState;
  /** Continue-as-new once history has this many events (tests lower it). */
  continueAsNewAfterEvents?: number;
}

export type NextAction =
  | { kind: 'reminder'; milestone: string; urgency: Urgency; at: string }
  | { kind: 'grace'; at: string }
  | { kind: 'expire'; at: string }
  | { kind: 'none' };

export interface SubscriptionView {
  subscriptionId: string;
  status: SubscriptionStatus;
  details: SubscriptionDetails;
  reminders: SentReminder[];
  nextAction: NextAction & { description?: string };
}

export const updateDetailsUpdate = defineUpdate<SubscriptionView, [{ details: SubscriptionDetails; plan: PeriodPlan }]>(
  'updateDetails',
);
/**
 * The same change as `updateDetailsUpdate`, as a signal: durable once Temporal has it, so the API answers a PUT
 * without waiting for a worker to take it. A canceled subscription ignores it (the API refuses a PUT to one first).
 */
export const changeDetailsSignal = defineSignal<[{ details: SubscriptionDetails; plan: PeriodPlan }]>('changeDetails');
export const renewUpdate = defineUpdate<SubscriptionView, [{ expiresAt: string; plan: PeriodPlan }]>('renew');
export const cancelUpdate = defineUpdate<SubscriptionView, [{ reason?: string }]>('cancel');
export const viewQuery = defineQuery<SubscriptionView>('view');

export interface SweepInput {
  /** Report subscriptions expiring within this window (default 24 h). */
  windowMs?: number;
  /** More than this many expiring is flagged as an alert (seed: 10). */
  alertThreshold?: number;
}
export interface SweepResult {
  checked: number;
  restarted: string[];
  expiringSoon: number;
  alert: boolean;
}
