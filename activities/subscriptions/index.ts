/**
 * Subscription activities: reminders (sent at most once per subscription, period and milestone — the
 * unique notification row is inserted in the transaction that sends), status transitions (the row the
 * SaaS app reads, audit, email, `subscription.*` event) and the daily sweep.
 */
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import type { Config } from '../../lib/config.js';
import { withTransaction, type Pool } from '../../lib/db.js';
import type { Logger } from '../../lib/logger.js';
import type { Mailer } from '../../lib/mailer.js';
import { reminderEmail, statusEmail, sweepReportEmail } from '../../lib/subscriptions/emails.js';
import {
  audit,
  claimNotification,
  periodStillCurrent,
  detailsFromRow,
  expiringSubscriptionRows,
  liveSubscriptionRows,
  recordNotificationMessage,
  refOf,
  rowWorkflowId,
  sentReminders,
  setSubscriptionStatus,
  type SubscriptionRow,
} from '../../lib/subscriptions/rows.js';
import { subscriptionStart } from '../../lib/subscriptions/start.js';
import { internalKey, publishOpsEvent } from '../../lib/webhooks/ops-events.js';
import { publishEvent, webhookServiceDeps } from '../../lib/webhooks/service.js';
import {
  SUBSCRIPTION_WORKFLOW,
  type SentReminder,
  type SubscriptionDetails,
  type SubscriptionRef,
  type SubscriptionStatus,
  type SweepInput,
  type SweepResult,
  type Urgency,
} from '../../lib/subscriptions/contract.js';

export interface SubscriptionActivityDeps {
  config: Config;
  pool: Pool;
  client: Client;
  mailer: Mailer;
  log: Logger;
  queues: { subscriptions: string; webhooks: string };
}

/** Starts the lifecycle workflow for a row (the API for a new subscription, the sweep for a lost one). */
/** Rows per page of the sweep. */
const SWEEP_PAGE = 1000;

export async function startSubscriptionWorkflow(
  deps: { client: Client; queues: { subscriptions: string } },
  row: SubscriptionRow,
  reminders: SentReminder[] = [],
): Promise<boolean> {
  const { workflowType, options } = subscriptionStart(
    row.id,
    detailsFromRow(row),
    row.status,
    deps.queues.subscriptions,
    {
      reminders,
      legacyWorkflowId: row.legacy_workflow_id,
    },
  );
  try {
    await deps.client.workflow.start(workflowType, {
      ...options,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    });
    return true;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return false;
    throw err;
  }
}

export const createSubscriptionActivities = (deps: SubscriptionActivityDeps) => {
  const events = webhookServiceDeps(deps.config, deps.pool, deps.client, deps.queues);

  /**
   * Inserts the notification row and sends in one transaction; false when it was sent before, or when its period is
   * no longer the subscription's (renewed or canceled meanwhile).
   */
  async function notifyOnce(
    ref: SubscriptionRef,
    expiresAt: string,
    milestone: string,
    urgency: string,
    message: Parameters<Mailer['send']>[0],
  ): Promise<boolean> {
    return withTransaction(deps.pool, async (client) => {
      const notification = { ...ref, expiresAt, milestone, urgency };
      // Renewed, moved or canceled since this reminder was planned (while its send was retried): not sent.
      if (!(await periodStillCurrent(client, ref, expiresAt))) return false;
      if (!(await claimNotification(client, notification))) return false; // sent before (a retry, a crash after the commit)
      // The Message-ID is derived from the unique key, so even the one window left (sent, then the commit
      // lost) produces a duplicate the receiving mail system can recognise.
      const key = `${ref.id}.${Date.parse(expiresAt)}.${milestone}`;
      const sent = await deps.mailer.send({ ...message, messageId: `<${key}@opsflow>` });
      await recordNotificationMessage(client, notification, sent.messageId);
      await audit(client, ref, 'notified', { milestone, urgency, expiresAt, to: message.to });
      return true;
    });
  }

  return {
    async sendReminder(input: {
      subscriptionId: string;
      details: SubscriptionDetails;
      milestone: string;
      urgency: Urgency;
    }): Promise<{ sent: boolean }> {
      const d = input.details;
      const sent = await notifyOnce(
        { tenantId: d.tenantId, id: input.subscriptionId },
        d.expiresAt,
        input.milestone,
        input.urgency,
        reminderEmail({ ...d, urgency: input.urgency, milestone: input.milestone }),
      );
      return { sent };
    },

    async transition(input: {
      subscriptionId: string;
      status: SubscriptionStatus;
      details: SubscriptionDetails;
      reason?: string;
    }): Promise<void> {
      const { subscriptionId: id, status, details: d } = input;
      const ref = { tenantId: d.tenantId, id };
      // Row and audit together, once: a retry (the email below failed, SMTP was down) finds the status already
      // set and writes no second audit row.
      await withTransaction(deps.pool, async (client) => {
        if (!(await setSubscriptionStatus(client, ref, status, input.reason))) return;
        await audit(client, ref, status, { expiresAt: d.expiresAt, reason: input.reason });
      });
      await publishEvent(events, {
        type: `subscription.${status}`,
        payload: { subscriptionId: id, tenantId: d.tenantId, status, expiresAt: d.expiresAt, reason: input.reason },
        tenantId: d.tenantId,
        idempotencyKey: internalKey(`subscription.${status}:${id}:${d.expiresAt}`),
      });
      if (status === 'grace' || status === 'expired') {
        await notifyOnce(ref, d.expiresAt, status, 'critical', statusEmail({ ...d, status }));
      }
    },

    /**
     * Reconciles PostgreSQL with Temporal (every active or grace row without a running workflow gets one),
     * then emails ops the subscriptions expiring within the window, flagged as an alert above the threshold.
     * O(pages), not O(rows × RPC): the running subscription workflows come from one visibility listing (pages of
     * 1,000), the rows from PostgreSQL in pages by id; only a row missing from the listing costs a start (which
     * is refused, harmlessly, for a workflow the listing had not caught up with yet). Heartbeats carry the last
     * row id, so a retried sweep goes on from there.
     */
    async sweep(input: SweepInput): Promise<SweepResult> {
      const windowMs = input.windowMs ?? 24 * 3600 * 1000;
      const threshold = input.alertThreshold ?? 10;
      const ctx = Context.current();
      // `after` is the last row done; a heartbeat from before ids were per tenant (afterId) starts over, harmlessly.
      const resumed =
        (ctx.info.heartbeatDetails as { after?: SubscriptionRef; checked?: number; restarted?: string[] }) ?? {};
      const running = new Set<string>();
      for await (const w of deps.client.workflow.list({
        query: `WorkflowType = '${SUBSCRIPTION_WORKFLOW}' AND ExecutionStatus = 'Running'`,
        pageSize: 1000,
      })) {
        running.add(w.workflowId);
        if (running.size % 1000 === 0) ctx.heartbeat({ ...resumed, listed: running.size });
      }
      const restarted: string[] = [...(resumed.restarted ?? [])];
      let checked = resumed.checked ?? 0;
      let after = resumed.after;
      for (;;) {
        const rows = await liveSubscriptionRows(deps.pool, after, SWEEP_PAGE);
        if (rows.length === 0) break;
        for (const row of rows) {
          if (running.has(rowWorkflowId(row))) continue;
          // What this period already sent stays sent: the new run plans only what is left.
          const reminders = await sentReminders(deps.pool, refOf(row), row.expires_at);
          if (await startSubscriptionWorkflow(deps, row, reminders)) restarted.push(row.id);
        }
        checked += rows.length;
        const last = rows.at(-1)!;
        after = refOf(last);
        ctx.heartbeat({ after, checked, restarted, listed: running.size });
      }
      const expiring = await expiringSubscriptionRows(deps.pool, windowMs);
      const alert = expiring.length > threshold;
      // One report per sweep run (a retried sweep publishes it once).
      await publishOpsEvent(
        events,
        'subscriptions.expiring',
        {
          expiring: expiring.length,
          windowHours: Math.round(windowMs / 3600_000),
          alert,
          threshold,
          restarted: restarted.length,
          subscriptions: expiring
            .slice(0, 50)
            .map((r) => ({ id: r.id, tenantId: r.tenant_id, expiresAt: r.expires_at })),
        },
        `subscriptions.expiring:${ctx.info.workflowExecution?.runId ?? 'direct'}:${ctx.info.activityId}`,
      );
      const to = deps.config.mail.opsEmail;
      if (to) {
        await deps.mailer.send({ to, ...sweepReportEmail({ expiring, alert, threshold, restarted, windowMs }) });
      } else {
        deps.log.warn({ expiring: expiring.length }, 'subscription sweep: OPS_EMAIL is unset, report not emailed');
      }
      const result: SweepResult = { checked, restarted, expiringSoon: expiring.length, alert };
      await audit(deps.pool, null, 'sweep', result);
      return result;
    },
  };
};
