/**
 * opsflow's own events (backups, restores, deploys, endpoints, the subscription sweep), published through the
 * webhook family like any other event, so a Slack or PagerDuty endpoint gets them with retries, a DLQ and
 * auto-disable. They carry no tenant (only the operator's endpoints, those with no tenant, receive them) and the
 * id of the workflow run they come from (the Temporal UI link of a notification). The idempotency key makes a
 * retried activity publish once.
 *
 * They are opsflow's alone: the API refuses a caller's event in a reserved namespace — each family's
 * (`backup.*`, `restore.*`, `deploy.*`, `endpoint.*`, `dlq.*`, `subscription.*`, `subscriptions.*`) and
 * `opsflow.*` for future ones — else a publisher key could page, or resolve a real PagerDuty incident; and every
 * key opsflow publishes under lives in a namespace (`opsflow:`) no caller may use, so a caller cannot take a key
 * first and suppress the real event.
 */
import { Context } from '@temporalio/activity';
import { publishEvent, WebhookError, type PublishResult, type WebhookServiceDeps } from './service.js';

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

/** The event namespaces (a type's first segment) only opsflow publishes in. */
export const RESERVED_EVENT_NAMESPACES = [
  'opsflow',
  'backup',
  'restore',
  'deploy',
  'endpoint',
  'dlq',
  'subscription',
  'subscriptions',
] as const;
/** What a test send (POST /v1/endpoints/{id}/test, the portal's button) delivers: opsflow's, never a caller's. */
export const TEST_EVENT_TYPE = 'opsflow.test';
/** Where the idempotency keys of opsflow's own publishes live. */
const INTERNAL_KEY_NAMESPACE = 'opsflow:';

export function isReservedEventType(type: string): boolean {
  return (RESERVED_EVENT_NAMESPACES as readonly string[]).includes(type.split('.')[0]!);
}

/** The idempotency key opsflow publishes one of its own events under. */
export const internalKey = (key: string) => `${INTERNAL_KEY_NAMESPACE}${key}`;

/** Refuses what a caller of the API may not publish: a reserved type, or a key in opsflow's namespace. */
export function checkCallerEvent(e: { type: string; idempotencyKey?: string }): void {
  if (isReservedEventType(e.type)) {
    throw new WebhookError(
      'forbidden',
      `event type ${e.type} is reserved: only opsflow publishes events in ${RESERVED_EVENT_NAMESPACES.map((n) => `${n}.*`).join(', ')}; publish yours under another name`,
      [{ path: 'type', message: 'reserved for opsflow' }],
    );
  }
  if (e.idempotencyKey?.startsWith(INTERNAL_KEY_NAMESPACE)) {
    throw new WebhookError(
      'forbidden',
      `idempotency keys starting with ${INTERNAL_KEY_NAMESPACE} are opsflow's own; choose another key`,
      [{ path: 'idempotencyKey', message: `starts with ${INTERNAL_KEY_NAMESPACE}` }],
    );
  }
}

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
    idempotencyKey: internalKey(idempotencyKey),
  });
}
