/**
 * Pure decisions of the subscription lifecycle, unit-tested directly.
 *
 * `planPeriod` turns a period's details into reminder instants: `expiresAt − offset`, moved to the local
 * `sendAt` time of that day in the subscription's time zone (DST-correct). It uses the time-zone database,
 * so it runs outside workflow code (the API and the sweep plan a period; the workflow receives the plan as
 * plain JSON). `nextAction` is what the workflow does next, given what was already sent and the time.
 */
import { formatDuration } from '../durations.js';
import { zoneFormat } from '../zone-format.js';
import type {
  NextAction,
  PeriodPlan,
  SentReminder,
  SubscriptionDetails,
  SubscriptionStatus,
  SubscriptionView,
  Urgency,
} from './contract.js';

const DAY = 24 * 3600 * 1000;

export function urgencyFor(offsetMs: number): Urgency {
  if (offsetMs <= DAY) return 'critical';
  if (offsetMs <= 3 * DAY) return 'high';
  return 'medium';
}

/** The parts `zoneOffsetMs` reads (one formatter per zone, made once: a fresh one per call cost an import 20 s). */
const OFFSET_PARTS: Intl.DateTimeFormatOptions = {
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
};

/** Offset of `timeZone` from UTC at `instant`, in ms (positive east of Greenwich). */
export function zoneOffsetMs(instant: number, timeZone: string): number {
  const parts = zoneFormat(timeZone, OFFSET_PARTS).formatToParts(new Date(instant));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/** The local calendar date (y, m, d) of `instant` in `timeZone`. */
function localDate(instant: number, timeZone: string): [number, number, number] {
  const local = new Date(instant + zoneOffsetMs(instant, timeZone));
  return [local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()];
}

/**
 * The instant of local time hh:mm on date y-m-d in `timeZone`. In a spring-forward gap the time does not
 * exist and the instant after the gap is used; in a fall-back overlap, the first of the two.
 */
export function localTimeToInstant(y: number, m: number, d: number, hh: number, mm: number, timeZone: string): number {
  const wall = Date.UTC(y, m, d, hh, mm);
  let guess = wall - zoneOffsetMs(wall, timeZone);
  const offsetAtGuess = zoneOffsetMs(guess, timeZone);
  guess = wall - offsetAtGuess;
  if (zoneOffsetMs(guess, timeZone) !== offsetAtGuess) {
    // In a gap: the wall time does not exist; move by the difference.
    guess = wall - zoneOffsetMs(guess, timeZone);
  } else {
    // Prefer the earlier instant of an overlap.
    const earlier = guess - 3600 * 1000;
    if (earlier + zoneOffsetMs(earlier, timeZone) === wall) guess = earlier;
  }
  return guess;
}

export function planPeriod(d: SubscriptionDetails): PeriodPlan {
  const expires = Date.parse(d.expiresAt);
  const offsets = [...new Set(d.reminderOffsetsMs)].sort((a, b) => b - a);
  const reminders = offsets.map((offsetMs) => {
    let at = expires - offsetMs;
    if (d.sendAt) {
      const [hh, mm] = d.sendAt.split(':').map(Number) as [number, number];
      const [y, m, day] = localDate(at, d.timezone);
      at = localTimeToInstant(y, m, day, hh, mm, d.timezone);
    }
    return {
      milestone: formatDuration(offsetMs),
      offsetMs,
      urgency: urgencyFor(offsetMs),
      at: new Date(at).toISOString(),
    };
  });
  return {
    reminders,
    expiresAt: new Date(expires).toISOString(),
    graceEndsAt: new Date(expires + d.graceDays * DAY).toISOString(),
  };
}

/**
 * What to do next. Reminders already sent or skipped are done. Of the reminders that are due, only the
 * most urgent is sent (the others are skipped: a subscription created inside the 3-day window gets the
 * 3-day reminder, not a burst of 7-day and 3-day ones). Reminders due after expiry are never sent.
 */
export function nextAction(
  plan: PeriodPlan,
  status: string,
  done: SentReminder[],
  nowMs: number,
): { action: NextAction; skip: string[] } {
  if (status === 'canceled' || status === 'expired') return { action: { kind: 'none' }, skip: [] };
  const expires = Date.parse(plan.expiresAt);
  const finished = new Set(done.map((r) => r.milestone));
  const open = plan.reminders.filter((r) => !finished.has(r.milestone) && Date.parse(r.at) < expires);
  if (status === 'active' && nowMs < expires) {
    const due = open.filter((r) => Date.parse(r.at) <= nowMs);
    if (due.length > 0) {
      const mostUrgent = due.reduce((a, b) => (a.offsetMs <= b.offsetMs ? a : b));
      return {
        action: { kind: 'reminder', milestone: mostUrgent.milestone, urgency: mostUrgent.urgency, at: mostUrgent.at },
        skip: due.filter((r) => r !== mostUrgent).map((r) => r.milestone),
      };
    }
    const upcoming = open.filter((r) => Date.parse(r.at) > nowMs).sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    const first = upcoming[0];
    if (first)
      return {
        action: { kind: 'reminder', milestone: first.milestone, urgency: first.urgency, at: first.at },
        skip: [],
      };
  }
  const graceEnds = Date.parse(plan.graceEndsAt);
  if (status === 'active' && graceEnds > expires) return { action: { kind: 'grace', at: plan.expiresAt }, skip: [] };
  return { action: { kind: 'expire', at: plan.graceEndsAt }, skip: [] };
}

/**
 * What GET /v1/subscriptions/:id shows: status, details, reminders and the next action with its description.
 * Pure, so the workflow's `view` query and the API's answer to a create (which does not wait for the worker)
 * say the same thing.
 */
export function subscriptionView(
  subscriptionId: string,
  state: { status: SubscriptionStatus; details: SubscriptionDetails; plan: PeriodPlan; reminders: SentReminder[] },
  nowMs: number,
): SubscriptionView {
  const { action } = nextAction(state.plan, state.status, state.reminders, nowMs);
  const description =
    action.kind === 'reminder'
      ? `reminder ${action.milestone} (${action.urgency}) at ${action.at}`
      : action.kind === 'none'
        ? undefined
        : `${action.kind} at ${action.at}`;
  return {
    subscriptionId,
    status: state.status,
    details: state.details,
    reminders: state.reminders,
    nextAction: { ...action, description },
  };
}

/**
 * A period's reminder list as its workflow keeps it, from what was sent (opsflow.subscription_notifications, in
 * the order sent): the workflow sends reminders in the order they fall due and, at each send, marks the earlier
 * ones it did not send as skipped — so a planned reminder with no send, due no later than one that was sent, was
 * skipped at that send. What the API answers when it changes a subscription without waiting for its workflow.
 */
export function remindersAsKept(plan: PeriodPlan, sent: SentReminder[]): SentReminder[] {
  const sentMilestones = new Set(sent.map((r) => r.milestone));
  const listed = new Set<string>();
  const kept: SentReminder[] = [];
  for (const s of [...sent].sort((a, b) => Date.parse(a.sentAt) - Date.parse(b.sentAt))) {
    const at = plan.reminders.find((r) => r.milestone === s.milestone)?.at;
    for (const r of plan.reminders) {
      if (at === undefined || sentMilestones.has(r.milestone) || listed.has(r.milestone)) continue;
      if (Date.parse(r.at) > Date.parse(at)) continue;
      kept.push({ milestone: r.milestone, urgency: r.urgency, sentAt: s.sentAt, outcome: 'skipped' });
      listed.add(r.milestone);
    }
    kept.push(s);
  }
  return kept;
}
