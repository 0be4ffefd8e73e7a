/**
 * webhookDelivery — replaces webhook-retry.service.ts (in-process retries, then a dead-letter table).
 * One run per delivery, id `webhook:<deliveryId>`:
 *
 * 1. Wait the schedule's step (0 s for the first attempt); a `retryNow` signal cuts the wait.
 * 2. Attempt: one signed POST, recorded in PostgreSQL with its decision (delivered / retry / dead-letter).
 * 3. Retry → back to 1 with the next step (or the receiver's Retry-After, capped).
 * A rate-limited endpoint's attempt may come back `paced` instead (lib/webhooks/pacing.ts): not sent, not counted;
 * the run sleeps on a durable timer until just before the send slot the limit holds for it, then attempts again.
 * 4. Delivered → done. Dead-lettered → the endpoint's disabling is reported if this attempt caused it,
 *    and the run ends with status `dead_lettered`; a redrive starts a new run with the same webhook-id.
 *
 * webhookDeliveryFast — the same delivery at the least Temporal work (WEBHOOK_DELIVERY_PATH=fast, the default).
 * Its first attempt runs as a local activity inside the first workflow task (eagerly started when the API shares
 * the workers' connection), and the OpsStatus upsert goes with that task's completion: a delivery answered on
 * its first attempt needs no activity task and fewer history events and workflow tasks than webhookDelivery
 * (`npm run bench:paths` measures both; figures in bench/RESULTS.md). Everything after a failed first attempt —
 * durable timers, activities, the same OpsStatus values — is webhookDelivery's. A first attempt that fails as an
 * activity (PostgreSQL away past its patience, worker lost) is made again as a normal activity with the same
 * attempt number, which returns the recorded decision if the local one got as far as recording it.
 */
import {
  type ActivityOptions,
  condition,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  TemporalFailure,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { createWebhookActivities } from '../../activities/webhooks/index.js';
import { OpsStatus } from '../../lib/search-attributes.js';
import {
  type AttemptResult,
  liveStateQuery,
  retryNowSignal,
  type DeliveryLiveState,
  type WebhookDeliveryInput,
  type WebhookDeliveryResult,
} from '../../lib/webhooks/contract.js';

type Activities = ReturnType<typeof createWebhookActivities>;

// The HTTP outcome is a result, not an exception: these retries only cover infrastructure failures
// (database down, worker crash), and the attempt is recorded once whatever happens.
const httpAttempt: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1s', maximumInterval: '1 minute', nonRetryableErrorTypes: ['DeliveryNotFound'] },
};
const notify = { startToCloseTimeout: '1 minute', retry: { maximumAttempts: 5 } } as const;

const { attemptDelivery } = proxyActivities<Activities>(httpAttempt);
const { notifyEndpointDisabled } = proxyActivities<Activities>(notify);
// One try in the workflow task: a failure goes on as a normal activity (retried with backoff, visible as pending).
const local = proxyLocalActivities<Activities>({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 1 } });

type AttemptInput = Parameters<Activities['attemptDelivery']>[0];

async function firstAttemptLocally(args: AttemptInput): Promise<AttemptResult> {
  try {
    return await local.attemptDelivery(args);
  } catch (err) {
    // A failed local activity arrives as its cause (an ApplicationFailure), not wrapped in an ActivityFailure.
    if (isCancellation(err) || !(err instanceof TemporalFailure)) throw err;
    return attemptDelivery(args);
  }
}

/** "14:05:09 UTC": the time part is what an operator scanning today's runs needs. */
const clock = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)} UTC`;

export async function webhookDelivery(input: WebhookDeliveryInput): Promise<WebhookDeliveryResult> {
  return deliver(input, false);
}

export async function webhookDeliveryFast(input: WebhookDeliveryInput): Promise<WebhookDeliveryResult> {
  return deliver(input, true);
}

async function deliver(input: WebhookDeliveryInput, fast: boolean): Promise<WebhookDeliveryResult> {
  let retryNow = false;
  const state: DeliveryLiveState = { phase: 'waiting', attempts: input.previousAttempts ?? 0 };
  setHandler(retryNowSignal, () => {
    retryNow = true;
  });
  setHandler(liveStateQuery, () => state);
  const schedule = input.retryScheduleMs.length > 0 ? input.retryScheduleMs : [0];

  let step = 0;
  let wait = schedule[0]!;
  // The fast path's first attempt runs locally, in the workflow task.
  let firstAttempt = fast;
  // A send slot the endpoint's rate limit holds for the next attempt.
  let slotAt: string | undefined;
  const setStatus = (value: string) => upsertSearchAttributes([{ key: OpsStatus, value }]);
  for (;;) {
    if (wait > 0 && !retryNow) {
      state.phase = 'waiting';
      state.nextAttemptAt = new Date(Date.now() + wait).toISOString();
      await condition(() => retryNow, wait);
    }
    retryNow = false;
    state.phase = 'attempting';
    state.nextAttemptAt = undefined;

    const args: AttemptInput = {
      deliveryId: input.deliveryId,
      attemptNo: state.attempts + 1,
      stepIndex: step,
      retryScheduleMs: schedule,
      ...(slotAt !== undefined ? { slotAt } : {}),
    };
    const attempt = firstAttempt ? await firstAttemptLocally(args) : await attemptDelivery(args);
    firstAttempt = false;
    slotAt = undefined;
    if (attempt.next.kind === 'paced') {
      // The endpoint's rate limit holds a send slot for this attempt: sleep until just before it, then attempt
      // holding it. Only a rate-limited endpoint's attempt returns this (none did before the limit existed), so
      // replays of older runs are unchanged. A retry-now signal does not cut it: the limit holds.
      const wakeAt = Date.now() + attempt.next.wakeInMs;
      state.phase = 'waiting';
      state.nextAttemptAt = new Date(wakeAt).toISOString();
      setCurrentDetails(`paced by the endpoint's rate limit: attempt ${state.attempts + 1} at ${clock(wakeAt)}`);
      slotAt = attempt.next.slotAt;
      wait = 0;
      await sleep(attempt.next.wakeInMs);
      continue;
    }
    state.attempts = Math.max(state.attempts, attempt.attemptNo);
    state.lastStatusCode = attempt.statusCode;
    state.lastError = attempt.error;

    const answer = attempt.statusCode !== undefined ? `${attempt.statusCode}` : (attempt.error ?? 'no answer');
    if (attempt.next.kind === 'retry') {
      setCurrentDetails(
        `attempt ${step + 1} of ${schedule.length} failed (${answer}); next at ${clock(Date.now() + attempt.next.delayMs)}`,
      );
      step += 1;
      wait = attempt.next.delayMs;
      setStatus('retrying');
      continue;
    }
    if (attempt.next.kind === 'superseded') {
      // Only a new worker returns this (no earlier history holds it), so replays of older runs are unchanged.
      setCurrentDetails(`not sent: ${attempt.next.reason}`);
      state.phase = 'done';
      setStatus('discarded');
      return { deliveryId: input.deliveryId, status: 'discarded', attempts: state.attempts };
    }
    if (attempt.next.kind === 'delivered') {
      setCurrentDetails(`delivered on attempt ${state.attempts} (${answer})`);
      state.phase = 'done';
      setStatus('delivered');
      return { deliveryId: input.deliveryId, status: 'delivered', attempts: state.attempts };
    }
    if (attempt.endpointDisabled) {
      await notifyEndpointDisabled({ endpointId: attempt.endpointId, reason: attempt.endpointDisabled });
    }
    if (retryNow) {
      // Redriven while this attempt was being dead-lettered: run the schedule again.
      step = 0;
      wait = 0;
      continue;
    }
    setCurrentDetails(`dead-lettered after attempt ${state.attempts}: ${attempt.next.reason} (last ${answer})`);
    state.phase = 'done';
    setStatus('dead_lettered');
    return {
      deliveryId: input.deliveryId,
      status: 'dead_lettered',
      attempts: state.attempts,
      reason: attempt.next.reason,
    };
  }
}
