/**
 * webhookRecover — one recover (lib/webhooks/recover.ts), id `webhook-recover:<recoverId>`: sends the window's
 * deliveries again a batch at a time through one activity, which keeps the progress in PostgreSQL (so the API,
 * the CLI and the console read it there, during and after the run). A rate-limited endpoint's next batch waits
 * while its send slots are booked far ahead; a long recover continues as new.
 */
import {
  continueAsNew,
  proxyActivities,
  setCurrentDetails,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createWebhookActivities } from '../../activities/webhooks/index.js';
import { OpsStatus } from '../../lib/search-attributes.js';
import type { RecoverStep } from '../../lib/webhooks/recover.js';

const { recoverBatch } = proxyActivities<ReturnType<typeof createWebhookActivities>>({
  startToCloseTimeout: '5 minutes',
  // PostgreSQL or Temporal away: the batch is tried again (from the same cursor) until they are back.
  retry: { initialInterval: '1s', maximumInterval: '1 minute', nonRetryableErrorTypes: ['RecoverNotFound'] },
});

const RUN_LENGTH = 200;

export async function webhookRecover(input: { recoverId: string }): Promise<RecoverStep> {
  for (let batches = 0; ; batches++) {
    const step = await recoverBatch({ recoverId: input.recoverId });
    setCurrentDetails(`${step.state}: ${step.resent} of ${step.total} sent again`);
    if (step.done) {
      upsertSearchAttributes([{ key: OpsStatus, value: step.state }]);
      return step;
    }
    if (step.waitMs) await sleep(step.waitMs);
    if (batches + 1 >= RUN_LENGTH || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof webhookRecover>(input);
    }
  }
}
