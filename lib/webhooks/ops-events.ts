/**
 * opsflow's own events (backups, restores, deploys, endpoints, the subscription sweep), published through the
 * webhook family like any other event, so a Slack or PagerDuty endpoint gets them with retries, a DLQ and
 * auto-disable. They carry no tenant (only the operator's endpoints, those with no tenant, receive them) and the
 * id of the workflow run they come from (the Temporal UI link of a notification). The idempotency key makes a
 * retried activity publish once.
 */
import { Context } from '@temporalio/activity';
import { publishEvent, type PublishResult, type WebhookServiceDeps } from './service.js';

export type OpsEventType =
  | 'backup.verified'
  | 'backup.failed'
  | 'backup.stale'
  | 'restore.succeeded'
  | 'restore.failed'
  | 'deploy.started'
  | 'deploy.approval_requested'
  | 'deploy.succeeded'
  | 'deploy.rolled_back'
  | 'deploy.rollback_failed'
  | 'deploy.aborted'
  | 'deploy.canceled'
  | 'deploy.rejected'
  | 'subscriptions.expiring'
  | 'dlq.growing'
  | 'dlq.cleared';

/** The running activity's workflow id, if this runs in an activity. */
function currentWorkflowId(): string | undefined {
  try {
    return Context.current().info.workflowExecution?.workflowId;
  } catch {
    return undefined;
  }
}

export function publishOpsEvent(
  deps: WebhookServiceDeps,
  type: OpsEventType,
  payload: Record<string, unknown>,
  idempotencyKey: string,
): Promise<PublishResult> {
  const workflowId = currentWorkflowId();
  return publishEvent(deps, {
    type,
    payload: { ...payload, ...(workflowId ? { workflowId } : {}) },
    idempotencyKey,
  });
}
