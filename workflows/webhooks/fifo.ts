/**
 * webhookFifo — the sequencer of one ordered (`fifo`) endpoint, id `webhook-fifo:<endpointId>`.
 *
 * The queue is PostgreSQL's: the endpoint's deliveries not finished yet, by `fifo_seq` (commit order; a redrive
 * moves a delivery to the back). The sequencer asks for the head, runs it as a child delivery workflow (the same
 * workflow and id as any delivery: retries, Retry-After, dead letters, auto-disable, retry-now all hold) and
 * waits for it to be delivered, dead-lettered or discarded before asking again — so event n+1 is never sent
 * before event n has finished, and a dead-lettered head lets the queue go on. A publish (or the reconciler, or a
 * redrive) signals `fifoWake` with start: an idle sequencer sleeps on the signal and ends after an idle hour; a
 * long queue continues as new every 500 deliveries (or when Temporal suggests it).
 */
import {
  condition,
  continueAsNew,
  executeChild,
  ParentClosePolicy,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { createWebhookActivities } from '../../activities/webhooks/index.js';
import {
  OpsKind,
  OpsStatus,
  TenantId,
  WebhookEndpointId,
  WebhookEvent,
  WebhookHost,
} from '../../lib/search-attributes.js';
import {
  deliveryWorkflowId,
  fifoWakeSignal,
  type WebhookDeliveryInput,
  type WebhookDeliveryResult,
  type WebhookFifoInput,
} from '../../lib/webhooks/contract.js';

type Activities = ReturnType<typeof createWebhookActivities>;

const { fifoHead } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1s', maximumInterval: '1 minute' },
});

const IDLE_END = '1 hour';
const RUN_LENGTH = 500;

export async function webhookFifo(input: WebhookFifoInput): Promise<{ finished: number }> {
  let woken = false;
  setHandler(fifoWakeSignal, () => {
    woken = true;
  });
  let finished = input.finished ?? 0;
  let thisRun = 0;
  for (;;) {
    woken = false;
    const head = await fifoHead({ endpointId: input.endpointId });
    if (!head) {
      setCurrentDetails(`idle; ${finished} deliveries in order so far`);
      if (!(await condition(() => woken, IDLE_END))) return { finished };
      continue;
    }
    setCurrentDetails(`delivering ${head.deliveryId} (${head.eventType}); ${finished} before it`);
    let result: WebhookDeliveryResult;
    try {
      result = await executeChild<(input: WebhookDeliveryInput) => Promise<WebhookDeliveryResult>>(head.workflowType, {
        workflowId: deliveryWorkflowId(head.deliveryId),
        args: [head.input],
        // A redriven delivery runs again under its id; the sequencer ending must not end a delivery.
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: [
          { key: OpsKind, value: 'webhook' },
          { key: OpsStatus, value: 'pending' },
          { key: WebhookEvent, value: head.eventType },
          { key: WebhookEndpointId, value: input.endpointId },
          { key: WebhookHost, value: head.host },
          ...(head.tenantId ? [{ key: TenantId, value: head.tenantId }] : []),
        ],
        staticSummary: `${head.eventType} → ${head.host} (in order)`,
      });
    } catch (err) {
      // Its workflow is already running (started outside the sequencer): look again once it has had time to end.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      await sleep('5 seconds');
      continue;
    }
    finished += 1;
    thisRun += 1;
    setCurrentDetails(`${head.deliveryId} ${result.status}; ${finished} deliveries in order so far`);
    if (thisRun >= RUN_LENGTH || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof webhookFifo>({ endpointId: input.endpointId, finished });
    }
  }
}
