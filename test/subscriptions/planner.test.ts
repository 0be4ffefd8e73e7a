import { describe, expect, it } from 'vitest';
import type { SubscriptionDetails } from '../../lib/subscriptions/contract.js';
import {
  localTimeToInstant,
  nextAction,
  planPeriod,
  remindersAsKept,
  urgencyFor,
  zoneOffsetMs,
} from '../../lib/subscriptions/planner.js';

const DAY = 86_400_000;
const details = (over: Partial<SubscriptionDetails>): SubscriptionDetails => ({
  tenantId: 't',
  email: 'a@example.com',
  name: null,
  plan: null,
  expiresAt: '2026-12-10T15:00:00Z',
  timezone: 'UTC',
  reminderOffsetsMs: [7 * DAY, 3 * DAY, DAY],
  sendAt: '09:00',
  graceDays: 0,
  ...over,
});

describe('subscription planner', () => {
  it('maps offsets to the seeds’ urgency', () => {
    expect(urgencyFor(7 * DAY)).toBe('medium');
    expect(urgencyFor(3 * DAY)).toBe('high');
    expect(urgencyFor(DAY)).toBe('critical');
    expect(urgencyFor(2 * DAY)).toBe('high');
  });

  it('moves reminders to the local send time of their day', () => {
    const plan = planPeriod(details({ timezone: 'America/Sao_Paulo' })); // UTC−3, no DST
    expect(plan.reminders.map((r) => [r.milestone, r.urgency, r.at])).toEqual([
      ['7d', 'medium', '2026-12-03T12:00:00.000Z'],
      ['3d', 'high', '2026-12-07T12:00:00.000Z'],
      ['1d', 'critical', '2026-12-09T12:00:00.000Z'],
    ]);
    expect(plan.expiresAt).toBe('2026-12-10T15:00:00.000Z');
  });

  it('is DST-correct across a change of offset (Europe/Berlin, October 2026)', () => {
    // Expiry 2026-10-28 10:00 UTC (11:00 CET). 7 days before is 2026-10-21, still CEST (UTC+2):
    // 09:00 local there is 07:00 UTC; 1 day before (10-27) is CET (UTC+1): 08:00 UTC.
    const plan = planPeriod(details({ expiresAt: '2026-10-28T10:00:00Z', timezone: 'Europe/Berlin' }));
    expect(plan.reminders.map((r) => r.at)).toEqual([
      '2026-10-21T07:00:00.000Z',
      '2026-10-25T08:00:00.000Z', // the change happened on 10-25 at 03:00 local: 09:00 that day is CET
      '2026-10-27T08:00:00.000Z',
    ]);
  });

  it('handles a send time in a spring-forward gap and a fall-back overlap', () => {
    // New York, 2026-03-08: 02:00 → 03:00. 02:30 does not exist: the instant after the gap.
    expect(new Date(localTimeToInstant(2026, 2, 8, 2, 30, 'America/New_York')).toISOString()).toBe(
      '2026-03-08T07:30:00.000Z',
    );
    // 2026-11-01: 01:30 happens twice; the first (EDT, UTC−4).
    expect(new Date(localTimeToInstant(2026, 10, 1, 1, 30, 'America/New_York')).toISOString()).toBe(
      '2026-11-01T05:30:00.000Z',
    );
    expect(zoneOffsetMs(Date.parse('2026-07-01T00:00:00Z'), 'America/New_York')).toBe(-4 * 3600 * 1000);
  });

  it('sends at the exact offset without sendAt', () => {
    const plan = planPeriod(details({ sendAt: null }));
    expect(plan.reminders.map((r) => r.at)).toEqual([
      '2026-12-03T15:00:00.000Z',
      '2026-12-07T15:00:00.000Z',
      '2026-12-09T15:00:00.000Z',
    ]);
  });

  it('inside a window: the most urgent due reminder now, the missed ones skipped, the rest later', () => {
    const plan = planPeriod(details({ sendAt: null }));
    const now = Date.parse('2026-12-08T00:00:00Z'); // after 7d and 3d, before 1d
    const { action, skip } = nextAction(plan, 'active', [], now);
    expect(action).toMatchObject({ kind: 'reminder', milestone: '3d', urgency: 'high' });
    expect(skip).toEqual(['7d']);
    const after = nextAction(
      plan,
      'active',
      [
        { milestone: '7d', urgency: 'medium', sentAt: '', outcome: 'skipped' },
        { milestone: '3d', urgency: 'high', sentAt: '', outcome: 'sent' },
      ],
      now,
    );
    expect(after.action).toMatchObject({ kind: 'reminder', milestone: '1d', at: '2026-12-09T15:00:00.000Z' });
  });

  it('rebuilds the reminder list a workflow keeps from the sends recorded: skipped ones before the send that skipped them', () => {
    const plan = planPeriod(details({ sendAt: null }));
    const sent = (milestone: string, urgency: 'medium' | 'high' | 'critical', sentAt: string) => ({
      milestone,
      urgency,
      sentAt,
      outcome: 'sent' as const,
    });
    // Created inside the 3-day window (7d skipped at the 3d send), then the 1d one sent; listed out of order.
    const kept = remindersAsKept(plan, [
      sent('1d', 'critical', '2026-12-09T15:00:01.000Z'),
      sent('3d', 'high', '2026-12-08T00:00:01.000Z'),
    ]);
    expect(kept).toEqual([
      { milestone: '7d', urgency: 'medium', sentAt: '2026-12-08T00:00:01.000Z', outcome: 'skipped' },
      sent('3d', 'high', '2026-12-08T00:00:01.000Z'),
      sent('1d', 'critical', '2026-12-09T15:00:01.000Z'),
    ]);
    // What nextAction then does with it is what it does with the workflow's own list.
    expect(nextAction(plan, 'active', kept, Date.parse('2026-12-09T16:00:00Z')).action.kind).toBe('expire');
    // Each in turn: nothing skipped; nothing sent: an empty list (a reminder not yet due is not skipped).
    expect(remindersAsKept(plan, [sent('7d', 'medium', '2026-12-03T15:00:00Z')])).toEqual([
      sent('7d', 'medium', '2026-12-03T15:00:00Z'),
    ]);
    expect(remindersAsKept(plan, [])).toEqual([]);
    // A send of a milestone the plan no longer has (its offsets changed since) is listed and skips nothing.
    expect(remindersAsKept(plan, [sent('2d', 'high', '2026-12-08T00:00:00Z')])).toEqual([
      sent('2d', 'high', '2026-12-08T00:00:00Z'),
    ]);
  });

  it('after the reminders: grace (if any), then expire; nothing when canceled', () => {
    const sent = ['7d', '3d', '1d'].map((m) => ({
      milestone: m,
      urgency: 'high' as const,
      sentAt: '',
      outcome: 'sent' as const,
    }));
    const noGrace = planPeriod(details({}));
    expect(nextAction(noGrace, 'active', sent, Date.parse('2026-12-09T20:00:00Z')).action).toEqual({
      kind: 'expire',
      at: '2026-12-10T15:00:00.000Z',
    });
    const grace = planPeriod(details({ graceDays: 2 }));
    expect(nextAction(grace, 'active', sent, 0).action).toEqual({ kind: 'grace', at: '2026-12-10T15:00:00.000Z' });
    expect(nextAction(grace, 'grace', sent, 0).action).toEqual({ kind: 'expire', at: '2026-12-12T15:00:00.000Z' });
    expect(nextAction(grace, 'canceled', [], 0).action).toEqual({ kind: 'none' });
    // Created after expiry: no reminder at all, straight to expiry.
    expect(nextAction(noGrace, 'active', [], Date.parse('2026-12-11T00:00:00Z')).action.kind).toBe('expire');
  });
});
