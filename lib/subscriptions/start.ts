/** How a subscription's workflow is started, wherever it is started from (the API, the daily sweep). */
import { OpsKind, OpsStatus, SubscriptionExpiresAt, TenantId } from '../search-attributes.js';
import {
  SUBSCRIPTION_WORKFLOW,
  subscriptionWorkflowId,
  type SentReminder,
  type SubscriptionDetails,
  type SubscriptionInput,
  type SubscriptionStatus,
} from '../../workflows/subscriptions/definitions.js';
import { planPeriod } from '../../workflows/subscriptions/planner.js';

export function subscriptionStart(
  id: string,
  details: SubscriptionDetails,
  status: SubscriptionStatus,
  taskQueue: string,
  reminders: SentReminder[] = [],
) {
  const input: SubscriptionInput = {
    subscriptionId: id,
    state: { details, status, plan: planPeriod(details), reminders },
  };
  return {
    workflowType: SUBSCRIPTION_WORKFLOW,
    options: {
      taskQueue,
      workflowId: subscriptionWorkflowId(id),
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
