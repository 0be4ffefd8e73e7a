/**
 * Ordered (FIFO) endpoints, the API and worker side: waking an endpoint's sequencer (workflows/webhooks/fifo.ts)
 * and putting a redriven delivery at the back of its queue. lib/webhooks/service.ts routes an ordered endpoint's
 * starts and redrives here.
 */
import { WorkflowIdReusePolicy, WorkflowNotFoundError } from '@temporalio/client';
import { OpsKind, WebhookEndpointId } from '../search-attributes.js';
import {
  deliveryWorkflowId,
  fifoWakeSignal,
  fifoWorkflowId,
  retryNowSignal,
  WEBHOOK_FIFO_WORKFLOW,
} from './contract.js';
import type { WebhookServiceDeps } from './deps.js';

/** "Look at your queue": signals an ordered endpoint's sequencer, starting it if it is not running. */
export async function wakeSequencer(deps: WebhookServiceDeps, endpointId: string): Promise<void> {
  await deps.client.workflow.signalWithStart(WEBHOOK_FIFO_WORKFLOW, {
    taskQueue: deps.taskQueue,
    workflowId: fifoWorkflowId(endpointId),
    args: [{ endpointId }],
    signal: fifoWakeSignal,
    signalArgs: [],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: [
      { key: OpsKind, value: 'webhook-fifo' },
      { key: WebhookEndpointId, value: endpointId },
    ],
    staticSummary: `ordered deliveries of ${endpointId}`,
  });
}

/**
 * An ordered endpoint's redrive: a finished delivery goes to the back of its queue (a new `fifo_seq`) and the
 * sequencer is woken; one still queued or running keeps its place, and a running one cuts its wait.
 */
export async function requeue(deps: WebhookServiceDeps, d: { id: string; endpoint_id: string }): Promise<void> {
  const moved = await deps.pool.query(
    `UPDATE opsflow.webhook_deliveries
     SET status = 'pending', next_attempt_at = now(), updated_at = now(),
         fifo_seq = nextval('opsflow.webhook_delivery_seq')
     WHERE id = $1 AND status IN ('dead_lettered', 'discarded', 'delivered')`,
    [d.id],
  );
  if (moved.rowCount) return wakeSequencer(deps, d.endpoint_id);
  try {
    await deps.client.workflow.getHandle(deliveryWorkflowId(d.id)).signal(retryNowSignal);
  } catch (err) {
    // Not started yet: it waits for its turn in the queue.
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
}
