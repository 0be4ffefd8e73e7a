/** The webhook family's contract: what the API, the worker and the schedules agree on. */
import { defineQuery, defineSignal } from '@temporalio/workflow';

export const WEBHOOK_DELIVERY_WORKFLOW = 'webhookDelivery';
/** The same delivery with its first attempt as a local activity (see workflow.ts); same input, result, signals. */
export const WEBHOOK_DELIVERY_FAST_WORKFLOW = 'webhookDeliveryFast';
export const WEBHOOK_DLQ_REDRIVE_WORKFLOW = 'webhookDlqRedrive';
export const WEBHOOK_DLQ_CLEANUP_WORKFLOW = 'webhookDlqCleanup';

export const deliveryWorkflowId = (deliveryId: string) => `webhook:${deliveryId}`;

/**
 * Ordered endpoints: `fifo` ones receive one delivery at a time, in commit order, through one long-lived sequencer
 * workflow per endpoint (`webhook-fifo:<endpointId>`) that runs each delivery as its child.
 */
export const ENDPOINT_ORDERINGS = ['none', 'fifo'] as const;
export type EndpointOrdering = (typeof ENDPOINT_ORDERINGS)[number];
export const WEBHOOK_FIFO_WORKFLOW = 'webhookFifo';
export const fifoWorkflowId = (endpointId: string) => `webhook-fifo:${endpointId}`;
/** "There is something new in the queue": the sequencer looks again. Its content is in PostgreSQL. */
export const fifoWakeSignal = defineSignal('fifoWake');

export interface WebhookFifoInput {
  endpointId: string;
  /** Deliveries finished by earlier runs (continue-as-new carries the count). */
  finished?: number;
}

/** What the sequencer needs to run the queue's head as a child delivery workflow. */
export interface FifoHead {
  deliveryId: string;
  workflowType: string;
  input: WebhookDeliveryInput;
  eventType: string;
  host: string;
  tenantId: string | null;
}

export const DEFAULT_RETRY_SCHEDULE = ['0s', '1m', '5m', '15m', '1h'] as const;
export const DEFAULT_TIMEOUT_MS = 15_000;

export type DeliveryStatus = 'pending' | 'retrying' | 'delivered' | 'dead_lettered' | 'discarded';

export interface WebhookDeliveryInput {
  deliveryId: string;
  /** Wait before each attempt (ms): attempt i waits retryScheduleMs[i]. A snapshot of the endpoint's. */
  retryScheduleMs: number[];
  /** Attempts already made by earlier runs (a redrive continues the numbering). */
  previousAttempts?: number;
}

export interface WebhookDeliveryResult {
  deliveryId: string;
  /** `discarded`: not sent, superseded by a newer event of the same condition (PagerDuty endpoints). */
  status: 'delivered' | 'dead_lettered' | 'discarded';
  attempts: number;
  reason?: string;
}

/** What one attempt decided; computed by `nextStep` and recorded in PostgreSQL by the same activity. */
export type NextStep =
  | { kind: 'delivered' }
  | { kind: 'retry'; delayMs: number }
  | { kind: 'dead_letter'; reason: string }
  | { kind: 'superseded'; reason: string };

/**
 * Not attempted yet: the endpoint's rate limit holds a send slot for it at `slotAt` (PostgreSQL's clock); the
 * workflow sleeps `wakeInMs` and attempts again holding it (lib/webhooks/pacing.ts). Nothing is recorded.
 */
export interface Paced {
  kind: 'paced';
  slotAt: string;
  wakeInMs: number;
}

export interface AttemptResult {
  attemptNo: number;
  endpointId: string;
  statusCode?: number;
  error?: string;
  next: NextStep | Paced;
  /** Set when this attempt disabled the endpoint (410 Gone, or failing for too long). */
  endpointDisabled?: string;
}

export interface DeliveryLiveState {
  phase: 'waiting' | 'attempting' | 'done';
  attempts: number;
  nextAttemptAt?: string;
  lastStatusCode?: number;
  lastError?: string;
}

/** Cut the current wait and attempt now (API "retry now"; also the redrive of a parked run). */
export const retryNowSignal = defineSignal('retryNow');
export const liveStateQuery = defineQuery<DeliveryLiveState>('liveState');

export interface DlqRedriveInput {
  limit: number;
}
export interface DlqCleanupInput {
  olderThanMs: number;
}
