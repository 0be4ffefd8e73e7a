/**
 * historyRetention: the daily prune of finished history (lib/system-check/retention.ts) — webhook deliveries, attempts and
 * events past WEBHOOK_HISTORY_RETENTION, system check runs past SYSTEM_CHECK_RETENTION, subscription audit
 * rows past AUDIT_RETENTION. One heartbeating activity; the counts are its result and its page in the UI.
 */
import { proxyActivities, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { createSystemCheckActivities } from '../../activities/system-check/index.js';
import { OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import type { HistoryRetentionInput, HistoryRetentionResult } from '../../lib/system-check/contract.js';

const { pruneHistory } = proxyActivities<ReturnType<typeof createSystemCheckActivities>>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 5, initialInterval: '1 minute' },
});

export async function historyRetention(input: HistoryRetentionInput): Promise<HistoryRetentionResult> {
  upsertSearchAttributes([{ key: OpsKind, value: 'history-retention' }]);
  const result = await pruneHistory(input);
  setCurrentDetails(
    `deleted ${result.deliveries} deliveries, ${result.events} events, ${result.systemCheckRuns} system check runs, ${result.auditRows} audit rows`,
  );
  upsertSearchAttributes([{ key: OpsStatus, value: 'ok' }]);
  return result;
}
