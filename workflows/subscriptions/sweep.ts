/**
 * subscriptionSweep — the daily 09:00 run. Not the scheduler of reminders (each subscription's workflow
 * is): it repairs what lives outside Temporal's reach (rows the SaaS app wrote directly, workflows someone
 * terminated) and mails ops the subscriptions expiring within 24 h.
 */
import { proxyActivities, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { createSubscriptionActivities } from '../../activities/subscriptions/index.js';
import { OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import type { SweepInput, SweepResult } from '../../lib/subscriptions/contract.js';

// Pages of 1,000 rows, each heartbeating: the heartbeat timeout, not a guess at the table's size, says when a
// sweep is stuck; a retry resumes after the last row id it reported.
const { sweep } = proxyActivities<ReturnType<typeof createSubscriptionActivities>>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 5 },
});

export async function subscriptionSweep(input: SweepInput): Promise<SweepResult> {
  upsertSearchAttributes([{ key: OpsKind, value: 'subscription-sweep' }]);
  const result = await sweep(input);
  setCurrentDetails(
    `${result.checked} checked, ${result.restarted.length} workflows recreated, ${result.expiringSoon} expiring soon`,
  );
  upsertSearchAttributes([{ key: OpsStatus, value: result.alert ? 'alert' : 'ok' }]);
  return result;
}
