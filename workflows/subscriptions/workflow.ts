/**
 * subscriptionLifecycle — replaces check-subscriptions-cron.ts (a daily scan with a dedupe table).
 * One long-lived run per subscription, id `subscription:<id>`:
 *
 * 1. Sleep until the next action of the period's plan, or until an update (details, renew, cancel).
 * 2. Reminder due → send it (the most urgent due one; earlier missed ones are skipped, never a burst).
 * 3. Expiry → `grace` for graceDays (if any), then `expired`: PostgreSQL row, email, event, audit; done.
 * 4. Renewal → a new period: continue-as-new with the new plan, so no reminder of the old period remains.
 * Cancel → `canceled`, no further reminders; done. Long histories also continue-as-new.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createSubscriptionActivities } from '../../activities/subscriptions/index.js';
import { OpsStatus, SubscriptionExpiresAt } from '../../lib/search-attributes.js';
import {
  cancelUpdate,
  changeDetailsSignal,
  renewUpdate,
  updateDetailsUpdate,
  viewQuery,
  type PeriodPlan,
  type SubscriptionDetails,
  type SubscriptionInput,
  type SubscriptionState,
  type SubscriptionView,
} from '../../lib/subscriptions/contract.js';
import { nextAction, subscriptionView } from '../../lib/subscriptions/planner.js';

type Activities = ReturnType<typeof createSubscriptionActivities>;

// Emails: retried until the mail server takes them, every 5 minutes at most — an SMTP outage delays a reminder
// (the Temporal UI shows the activity retrying with the SMTP error) but never fails the subscription's workflow,
// which 10 attempts (about 8 minutes of outage) used to do. The unique row keeps a retry from sending twice;
// an expiry's row, event and audit are written on the first try, only its email waits.
const email = {
  startToCloseTimeout: '1 minute',
  retry: { maximumInterval: '5 minutes' },
} as const;
const { sendReminder, transition } = proxyActivities<Activities>(email);

/** Patch id: runs from before it pushed the old period's reminder into the new period's list. */
const PERIOD_CHANGED_DURING_REMINDER = 'period-changed-during-reminder';
/** Patch id: a PUT's change by signal (changeDetailsSignal), which workers before it did not handle. */
const DETAILS_BY_SIGNAL = 'details-by-signal';
/** Patch id: runs from before checked their history length only after an action, never after an update. */
const HISTORY_CHECKED_AFTER_UPDATES = 'history-checked-after-updates';

export async function subscriptionLifecycle(input: SubscriptionInput): Promise<SubscriptionView> {
  const id = input.subscriptionId;
  const state: SubscriptionState = input.state;
  let changed = false;
  let newPeriod = false;

  const view = (): SubscriptionView => subscriptionView(id, state, Date.now());

  /** New details (and their plan); a new expiry starts a new period. */
  const changeDetails = ({ details, plan }: { details: SubscriptionDetails; plan: PeriodPlan }) => {
    const periodChanged = details.expiresAt !== state.details.expiresAt;
    state.details = details;
    state.plan = plan;
    if (periodChanged) {
      newPeriod = true;
      state.reminders = [];
      state.status = 'active';
    }
    changed = true;
  };

  setHandler(viewQuery, view);
  setHandler(
    updateDetailsUpdate,
    (change) => {
      changeDetails(change);
      return view();
    },
    { validator: (_arg) => assertNotCanceled(state) },
  );
  // The API's PUT (from this release on): a signal cannot be refused, so one reaching a canceled subscription (a
  // cancel that won a race with the PUT's check of the row) changes nothing. Behind a patch: a worker of the release
  // before, running beside a new API in a rolling upgrade, had no handler and left such a signal unapplied — its
  // history replays that way, not as a change it never made (upgrade workers before the API).
  setHandler(changeDetailsSignal, (change) => {
    if (state.status !== 'canceled' && patched(DETAILS_BY_SIGNAL)) changeDetails(change);
  });
  setHandler(
    renewUpdate,
    ({ expiresAt, plan }) => {
      state.details = { ...state.details, expiresAt };
      state.plan = plan;
      state.reminders = [];
      state.status = 'active';
      newPeriod = true;
      changed = true;
      return view();
    },
    {
      validator: ({ expiresAt }: { expiresAt: string }) => {
        assertNotCanceled(state);
        if (Date.parse(expiresAt) <= Date.parse(state.details.expiresAt)) {
          throw new Error(`renewal must be later than the current expiry ${state.details.expiresAt}`);
        }
      },
    },
  );
  setHandler(
    cancelUpdate,
    async ({ reason }) => {
      state.status = 'canceled';
      state.cancelReason = reason;
      changed = true;
      await transition({ subscriptionId: id, status: 'canceled', details: state.details, reason });
      return view();
    },
    { validator: (_arg) => assertNotCanceled(state) },
  );

  upsertSearchAttributes([
    { key: OpsStatus, value: state.status },
    { key: SubscriptionExpiresAt, value: new Date(state.details.expiresAt) },
  ]);
  /** Past this run's event budget, or Temporal suggests a new run (its history is large). */
  const historyLong = () =>
    workflowInfo().historyLength > (input.continueAsNewAfterEvents ?? 2000) ||
    (workflowInfo().continueAsNewSuggested && patched(HISTORY_CHECKED_AFTER_UPDATES));

  for (;;) {
    if (state.status === 'canceled' || state.status === 'expired') break;
    const { action, skip } = nextAction(state.plan, state.status, state.reminders, Date.now());
    setCurrentDetails(view().nextAction.description ?? state.status);
    const waitMs = action.kind === 'none' ? undefined : Math.max(0, Date.parse(action.at) - Date.now());
    changed = false;
    if (waitMs === undefined) await condition(() => changed);
    else if (waitMs > 0) await condition(() => changed, waitMs);
    if (changed) {
      if (newPeriod) break; // continue-as-new below, with the new plan
      // Updates that keep the period (details, a plan change) grow the history too: a subscription edited every
      // day for years never reaches an action, so the check is here as well.
      if (historyLong() && patched(HISTORY_CHECKED_AFTER_UPDATES)) break;
      continue;
    }

    const now = new Date().toISOString();
    for (const milestone of skip) {
      const planned = state.plan.reminders.find((r) => r.milestone === milestone)!;
      state.reminders.push({ milestone, urgency: planned.urgency, sentAt: now, outcome: 'skipped' });
    }
    if (action.kind === 'reminder') {
      await sendReminder({
        subscriptionId: id,
        details: state.details,
        milestone: action.milestone,
        urgency: action.urgency,
      });
      // A renewal (or a new expiry) that landed while this reminder was being sent opened a new period: the
      // reminder belonged to the old one, so it is not recorded in the new period's list, and the new period
      // starts now (continue-as-new) instead of the loop resetting `changed` and never seeing it.
      if (newPeriod && patched(PERIOD_CHANGED_DURING_REMINDER)) break;
      state.reminders.push({ milestone: action.milestone, urgency: action.urgency, sentAt: now, outcome: 'sent' });
    } else if (action.kind === 'grace' || action.kind === 'expire') {
      state.status = action.kind === 'grace' ? 'grace' : 'expired';
      await transition({ subscriptionId: id, status: state.status, details: state.details });
    }
    upsertSearchAttributes([{ key: OpsStatus, value: state.status }]);
    if (historyLong()) break;
  }

  await condition(allHandlersFinished);
  if (state.status === 'canceled' || state.status === 'expired') {
    upsertSearchAttributes([{ key: OpsStatus, value: state.status }]);
    setCurrentDetails(state.status);
    return view();
  }
  return continueAsNew<typeof subscriptionLifecycle>({ ...input, state });
}

function assertNotCanceled(state: SubscriptionState): void {
  if (state.status === 'canceled') throw new Error('the subscription is canceled');
}
