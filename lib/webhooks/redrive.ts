/**
 * Sending deliveries again: one delivery (an operator's retry or resend), the open dead letters matching a filter
 * (an operator's redrive, the redrive schedule), and the restart itself, which a recover uses too.
 */
import { waitAtMost } from '../wait-at-most.js';
import { WorkflowIdReusePolicy } from '@temporalio/client';

import type { Pool } from '../db.js';
import { deliveryWorkflowId, retryNowSignal } from './contract.js';
import type { WebhookServiceDeps } from './deps.js';
import { requeue } from './fifo.js';
import {
  DELIVERY_START_COLUMNS,
  DELIVERY_START_FROM,
  deliveryInput,
  priorityOf,
  searchAttributes,
  WebhookError,
  type DeliveryStart,
} from './service.js';
import { hostOf } from './urls.js';

/** The delivery with what a restart needs; for a tenant's request, only when its endpoint is that tenant's. */
async function loadForRedrive(pool: Pool, deliveryId: string, tenant?: string) {
  const { rows } = await pool.query<DeliveryStart & { enabled: boolean; deleted_at: Date | null }>(
    `SELECT ${DELIVERY_START_COLUMNS}, ep.enabled, ep.deleted_at FROM ${DELIVERY_START_FROM}
     WHERE d.id = $1 AND ($2::text IS NULL OR ep.tenant_id = $2)`,
    [deliveryId, tenant ?? null],
  );
  return rows[0];
}

/**
 * Attempts again now: a running delivery cuts its wait; a finished one (dead-lettered, discarded, or
 * delivered and to be resent) starts a new run with the same `webhook-id`, continuing its attempt count.
 */
export async function redriveDelivery(
  deps: WebhookServiceDeps,
  deliveryId: string,
  by: string,
  tenant?: string,
): Promise<void> {
  const d = await loadForRedrive(deps.pool, deliveryId, tenant);
  if (!d) throw new WebhookError('not_found', `delivery ${deliveryId} not found`);
  if (d.deleted_at) throw new WebhookError('conflict', `endpoint ${d.endpoint_id} was deleted`);
  if (!d.enabled) throw new WebhookError('conflict', `endpoint ${d.endpoint_id} is disabled: enable it first`);
  await deps.pool.query(
    `UPDATE opsflow.dead_letters SET resolved_at = now(), resolution = 'redriven', resolved_by = $2
     WHERE delivery_id = $1 AND resolved_at IS NULL`,
    [deliveryId, by],
  );
  await signalOrStart(deps, d);
}

/**
 * Sends a delivery again: a running one cuts its wait, a finished one starts a new run with the same webhook-id
 * (an ordered endpoint's goes to the back of its queue). `bulk`: one of many (a redrive, a recover), whose new
 * run gets the bulk task priority.
 */
export async function signalOrStart(
  deps: WebhookServiceDeps,
  d: DeliveryStart,
  opts: { bulk?: boolean } = {},
): Promise<void> {
  if (d.ordering === 'fifo') return requeue(deps, d);
  await deps.pool.query(
    `UPDATE opsflow.webhook_deliveries SET status = 'pending', next_attempt_at = now(), updated_at = now()
     WHERE id = $1 AND status IN ('dead_lettered', 'discarded', 'delivered')`,
    [d.id],
  );
  await deps.client.workflow.signalWithStart(deps.workflowType, {
    taskQueue: deps.taskQueue,
    workflowId: deliveryWorkflowId(d.id),
    args: [deliveryInput(d)],
    signal: retryNowSignal,
    signalArgs: [],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: searchAttributes(d),
    ...priorityOf(deps, opts.bulk === true),
    staticSummary: `${d.event_type} → ${hostOf(d.url_origin)} (redrive)`,
  });
}

export interface RedriveFilter {
  /** Who redrives, as records name it: a key (`name (id)`) or `schedule`. */
  by: string;
  /** Only this tenant's endpoints' dead letters. */
  tenant?: string;
  endpointId?: string;
  since?: Date;
  until?: Date;
  limit: number;
}

/**
 * Redrives up to `limit` open dead letters, oldest first, skipping those whose endpoint is disabled or
 * deleted. Claims rows with SKIP LOCKED, so the schedule and an operator can redrive at the same time
 * without sending anything twice; a dead letter whose restart fails is reopened.
 */
export async function redriveDeadLetters(
  deps: WebhookServiceDeps,
  filter: RedriveFilter,
  opts: {
    /**
     * When the caller stops waiting (ms since the epoch; an API request's Temporal wait): restarts not begun by
     * then — still waiting for their turn in the bulk limiter behind other jobs — are not tried but reopened.
     */
    answerBy?: number;
  } = {},
): Promise<{ redriven: number; failed: number }> {
  const { rows } = await deps.pool.query<{ id: string; delivery_id: string }>(
    `UPDATE opsflow.dead_letters SET resolved_at = now(), resolution = 'redriven', resolved_by = $5
     WHERE id IN (
       SELECT dl.id FROM opsflow.dead_letters dl
       JOIN opsflow.webhook_endpoints ep ON ep.id = dl.endpoint_id
       WHERE dl.resolved_at IS NULL AND ep.enabled AND ep.deleted_at IS NULL
         AND ($1::text IS NULL OR dl.endpoint_id = $1)
         AND ($2::timestamptz IS NULL OR dl.created_at >= $2)
         AND ($3::timestamptz IS NULL OR dl.created_at < $3)
         AND ($6::text IS NULL OR ep.tenant_id = $6)
       ORDER BY dl.created_at LIMIT $4
       FOR UPDATE OF dl SKIP LOCKED)
     RETURNING id, delivery_id`,
    [
      filter.endpointId ?? null,
      filter.since ?? null,
      filter.until ?? null,
      filter.limit,
      filter.by,
      filter.tenant ?? null,
    ],
  );
  // Restarts in flight at the bulk pace (one after another, a thousand of them outlast a request's Temporal budget
  // when the server is busy; all at once, they crowd out interactive calls).
  const limit = deps.bulkStarts.lane();
  // Per row: not yet given a slot, being restarted, restarted, or failed.
  const state = rows.map((): 'queued' | 'sending' | 'sent' | 'failed' => 'queued');
  let givenUp = false;
  const tasks = rows.map((row, i) =>
    limit(async () => {
      // Its turn came after the caller's wait: reopened, not sent.
      if (givenUp || (opts.answerBy !== undefined && Date.now() >= opts.answerBy)) return;
      state[i] = 'sending';
      try {
        const d = await loadForRedrive(deps.pool, row.delivery_id);
        if (d) await signalOrStart(deps, d, { bulk: true });
        state[i] = 'sent';
      } catch {
        state[i] = 'failed';
      }
    }),
  );
  if (opts.answerBy === undefined) await Promise.all(tasks);
  else {
    // Waiting for the rest's turns in the bulk limiter could take minutes behind other jobs: at the caller's
    // limit, the rows not yet sent are given up (reopened below) and only those being sent are waited for.
    await waitAtMost(Promise.all(tasks), opts.answerBy - Date.now());
    givenUp = true;
    await Promise.all(tasks.filter((_, i) => state[i] === 'sending'));
  }
  const reopen = rows.filter((_, i) => state[i] !== 'sent').map((row) => row.id);
  if (reopen.length > 0) {
    await deps.pool.query(
      'UPDATE opsflow.dead_letters SET resolved_at = NULL, resolution = NULL, resolved_by = NULL WHERE id = ANY ($1)',
      [reopen],
    );
  }
  return { redriven: rows.length - reopen.length, failed: reopen.length };
}
