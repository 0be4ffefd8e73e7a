/** How a subscription's workflow is started, wherever it is started from (the API, the daily sweep). */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type Client,
} from '@temporalio/client';
import type { BulkStarts } from '../bulk-starts.js';
import type { Pool } from '../db.js';
import { startAll, type StartOutcome } from '../workflow-starts.js';
import {
  detailsFromRow,
  markSubscriptionsStarted,
  refOf,
  unstartedSubscriptionRows,
  type SubscriptionRow,
} from './rows.js';
import { OpsKind, OpsStatus, SubscriptionExpiresAt, TenantId } from '../search-attributes.js';
import {
  SUBSCRIPTION_WORKFLOW,
  subscriptionWorkflowId,
  type SentReminder,
  type SubscriptionDetails,
  type SubscriptionInput,
  type SubscriptionStatus,
} from './contract.js';
import { planPeriod } from './planner.js';

export function subscriptionStart(
  id: string,
  details: SubscriptionDetails,
  status: SubscriptionStatus,
  taskQueue: string,
  opts: { reminders?: SentReminder[]; legacyWorkflowId?: boolean } = {},
) {
  const input: SubscriptionInput = {
    subscriptionId: id,
    state: { details, status, plan: planPeriod(details), reminders: opts.reminders ?? [] },
  };
  return {
    workflowType: SUBSCRIPTION_WORKFLOW,
    options: {
      taskQueue,
      workflowId: subscriptionWorkflowId(details.tenantId, id, opts.legacyWorkflowId),
      args: [input] as [SubscriptionInput],
      typedSearchAttributes: [
        { key: OpsKind, value: 'subscription' },
        { key: TenantId, value: details.tenantId },
        { key: OpsStatus, value: status },
        { key: SubscriptionExpiresAt, value: new Date(details.expiresAt) },
      ],
      staticSummary: `subscription ${id} (${details.email})`,
    },
  };
}

export interface SubscriptionStarterDeps {
  pool: Pool;
  client: Client;
  taskQueue: string;
  /** Starts in flight at once (WORKFLOW_START_CONCURRENCY), or a limiter shared by every call of a process. */
  concurrency: number | BulkStarts;
  /**
   * The Temporal task priority of these bulk starts (BULK_TASK_PRIORITY): an import's thousands of first
   * workflow tasks queue behind the updates and single starts people wait for.
   */
  priority: number;
}

/**
 * Starts the workflows of rows that were committed without one (a batch import's new rows, a PUT whose start
 * never went through), bounded and recorded as they go. A workflow id that has ever run is refused rather than
 * run again (REJECT_DUPLICATE: an imported subscription that expired and finished must not expire twice) and
 * counts as started.
 */
export function startSubscriptionRows(deps: SubscriptionStarterDeps, rows: SubscriptionRow[]): Promise<StartOutcome> {
  return startAll(rows, {
    concurrency: deps.concurrency,
    start: async (row) => {
      const { workflowType, options } = subscriptionStart(row.id, detailsFromRow(row), row.status, deps.taskQueue, {
        legacyWorkflowId: row.legacy_workflow_id,
      });
      try {
        await deps.client.workflow.start(workflowType, {
          ...options,
          priority: { priorityKey: deps.priority },
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    },
    mark: (started) => markSubscriptionsStarted(deps.pool, started.map(refOf)),
    connection: deps.client.connection,
  });
}

/** The reconciler's round: rows committed at least `olderThanMs` ago whose workflow start was never recorded. */
export async function startUnstartedSubscriptions(
  deps: SubscriptionStarterDeps,
  opts: { olderThanMs: number; limit: number },
): Promise<StartOutcome> {
  return startSubscriptionRows(deps, await unstartedSubscriptionRows(deps.pool, opts.olderThanMs, opts.limit));
}
