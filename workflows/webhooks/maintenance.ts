/**
 * Scheduled DLQ chores (replace reprocess-dlq.ts, cron every 6 h, and the 30-day cleanup SQL):
 * webhookDlqRedrive redrives a batch of open dead letters; webhookDlqCleanup deletes resolved ones past
 * retention. Each is one activity; the workflow gives it a schedule, retries and a page in the UI.
 */
import { proxyActivities, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { createWebhookActivities } from '../../activities/webhooks/index.js';
import { OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import type { DlqCleanupInput, DlqRedriveInput } from '../../lib/webhooks/contract.js';

const { redriveDeadLetterBatch, cleanupDeadLetters } = proxyActivities<ReturnType<typeof createWebhookActivities>>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 5 },
});

export async function webhookDlqRedrive(input: DlqRedriveInput): Promise<{ redriven: number; failed: number }> {
  upsertSearchAttributes([{ key: OpsKind, value: 'webhook-dlq-redrive' }]);
  const result = await redriveDeadLetterBatch({ limit: input.limit });
  setCurrentDetails(`redriven ${result.redriven}, failed ${result.failed}`);
  upsertSearchAttributes([{ key: OpsStatus, value: result.failed > 0 ? 'partial' : 'ok' }]);
  return result;
}

export async function webhookDlqCleanup(input: DlqCleanupInput): Promise<{ deleted: number }> {
  upsertSearchAttributes([{ key: OpsKind, value: 'webhook-dlq-cleanup' }]);
  const result = await cleanupDeadLetters({ olderThanMs: input.olderThanMs });
  setCurrentDetails(`deleted ${result.deleted} resolved dead letters`);
  upsertSearchAttributes([{ key: OpsStatus, value: 'ok' }]);
  return result;
}
