/**
 * Webhook activities. `attemptDelivery` is the one that matters: it makes one signed HTTP attempt and records it
 * (./webhook-records.ts: the attempt row, the delivery's new status, a dead letter, the endpoint's health, with
 * the decision of `nextStep`). A retried activity whose record already committed returns the recorded decision
 * instead of sending again.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure, type Client } from '@temporalio/client';
import type { Config } from '../../lib/config.js';
import { createSecretBox, openStored, SecretBoxError } from '../../lib/secret-box.js';
import { hostOf } from '../../lib/webhooks/urls.js';
import type { Pool } from '../../lib/db.js';
import type { Logger } from '../../lib/logger.js';
import type { Mailer } from '../../lib/mailer.js';
import { admitted, pace, sent } from '../../lib/webhooks/pacing.js';
import { sendWebhook } from '../../lib/webhooks/send.js';
import { cleanupDeadLetters } from '../../lib/webhooks/dead-letters.js';
import { redriveDeadLetters } from '../../lib/webhooks/redrive.js';
import { publishEvent, WebhookError, webhookServiceDeps } from '../../lib/webhooks/service.js';
import { recoverNextBatch, type RecoverStep } from '../../lib/webhooks/recover.js';
import { internalKey, publishOpsEvent } from '../../lib/webhooks/ops-events.js';
import { renderDiscord, renderPagerDuty, renderSlack, type Envelope } from '../../lib/webhooks/formats.js';
import { signatureHeader } from '../../lib/webhooks/signing.js';
import { resolveWebhookTarget, transportPolicy, UrlRefusedError } from '../../lib/webhooks/ssrf.js';
import type { AttemptResult, FifoHead } from '../../lib/webhooks/contract.js';
import { createAttemptRecorder, type AttemptInput, type DeliveryRow } from './records.js';

export { RECORD_PATIENCE_MS, type AttemptInput } from './records.js';
import { classify } from '../../workflows/webhooks/policy.js';

export const WebhookErrorType = { DeliveryNotFound: 'DeliveryNotFound' } as const;

export const createWebhookActivities = (deps: {
  config: Config;
  pool: Pool;
  client: Client;
  mailer: Mailer;
  log: Logger;
  queues: { webhooks: string };
}) => {
  const transport = transportPolicy(deps.config.webhooks);
  // Signing secrets are stored encrypted; the worker decrypts them with its own key, just before signing.
  const box = createSecretBox(deps.config.encryption);
  const service = webhookServiceDeps(deps.config, deps.pool, deps.client, deps.queues);

  const temporalUi = deps.config.temporal.uiUrl
    ? { url: deps.config.temporal.uiUrl, namespace: deps.config.temporal.namespace }
    : undefined;

  /**
   * The bytes this endpoint is sent: the stored envelope itself, or it rendered for Slack or PagerDuty (the same
   * on every attempt); undefined when a PagerDuty endpoint has nothing to trigger or resolve for the event.
   */
  function render(d: DeliveryRow): string | undefined {
    if (d.format === 'standard') return d.body;
    const envelope = JSON.parse(d.body) as Envelope;
    const consoleUrl = deps.config.webhooks.consoleUrl;
    const ctx = { eventId: d.event_id, ...(temporalUi ? { temporalUi } : {}), ...(consoleUrl ? { consoleUrl } : {}) };
    if (d.format === 'slack') return JSON.stringify(renderSlack(envelope, ctx));
    if (d.format === 'discord') return JSON.stringify(renderDiscord(envelope, ctx));
    const event = renderPagerDuty(envelope, { ...ctx, routingKey: box.decrypt(d.routing_key!) });
    return event && JSON.stringify(event);
  }

  const { record, recordSent } = createAttemptRecorder(deps);

  return {
    async attemptDelivery(input: AttemptInput): Promise<AttemptResult> {
      // With the attempt's record if it has one: a retried activity (or the fast path's first attempt made again)
      // whose transaction committed returns that decision instead of sending again.
      const { rows } = await deps.pool.query<DeliveryRow & { recorded: AttemptResult | null }>(
        `SELECT d.id, d.event_id, d.endpoint_id, e.body, ep.url, ep.secret, ep.previous_secret,
                ep.previous_secret_expires_at, ep.timeout_ms, ep.enabled, ep.disabled_reason, ep.deleted_at,
                ep.format, ep.routing_key, ep.rate_limit_per_second, e.condition_key, e.created_at AS event_created_at,
                (SELECT a.decision FROM opsflow.webhook_attempts a
                 WHERE a.delivery_id = d.id AND a.attempt_no = $2) AS recorded
         FROM opsflow.webhook_deliveries d
         JOIN opsflow.webhook_events e ON e.id = d.event_id
         JOIN opsflow.webhook_endpoints ep ON ep.id = d.endpoint_id
         WHERE d.id = $1`,
        [input.deliveryId, input.attemptNo],
      );
      if (rows[0]?.recorded) return rows[0].recorded;
      const d = rows[0];
      if (!d) {
        throw ApplicationFailure.create({
          type: WebhookErrorType.DeliveryNotFound,
          message: `delivery ${input.deliveryId} not found`,
          nonRetryable: true,
        });
      }
      const startedAt = new Date();
      if (d.deleted_at || !d.enabled) {
        const reason = d.deleted_at
          ? 'endpoint deleted'
          : `endpoint disabled: ${d.disabled_reason ?? 'by an operator'}`;
        return record(d, input, startedAt, undefined, { kind: 'permanent', reason }, false);
      }
      // The URL is stored encrypted: one no key opens fails the attempt for good, naming the cause, like a secret.
      let url: string;
      try {
        url = openStored(box, d.url);
      } catch (err) {
        if (!(err instanceof SecretBoxError)) throw err;
        const reason = `cannot decrypt the endpoint's URL: ${err.message}. Put the key it was stored under in OPSFLOW_ENCRYPTION_KEY_PREVIOUS, or set the URL again (PATCH url)`;
        return record(d, input, startedAt, undefined, { kind: 'permanent', reason });
      }
      let target;
      try {
        target = await resolveWebhookTarget(url, transport);
      } catch (err) {
        if (!(err instanceof UrlRefusedError)) throw err;
        return record(d, input, startedAt, undefined, { kind: 'permanent', reason: `URL refused: ${err.message}` });
      }
      if (d.format === 'pagerduty' && d.condition_key) {
        // A newer event of this condition already reached the endpoint (a resolve sent while this trigger waited
        // for its retry): sending this one now would reopen, or close, the wrong incident.
        const newer = await deps.pool.query<{ event_id: string }>(
          `SELECT d2.event_id FROM opsflow.webhook_deliveries d2
           JOIN opsflow.webhook_events e2 ON e2.id = d2.event_id
           WHERE d2.endpoint_id = $1 AND d2.status = 'delivered' AND e2.condition_key = $2 AND e2.created_at > $3
           LIMIT 1`,
          [d.endpoint_id, d.condition_key, d.event_created_at],
        );
        if (newer.rows[0]) {
          const reason = `superseded by ${newer.rows[0].event_id}, a newer event of condition ${d.condition_key} already delivered`;
          return record(d, input, startedAt, undefined, { kind: 'permanent', reason }, false, {
            kind: 'superseded',
            reason,
          });
        }
      }
      // A secret or routing key no key of this worker opens (the key it was stored under was dropped, or the
      // value altered) will not open on a retry either: the attempt is recorded and dead-lettered with the cause.
      let body: string | undefined;
      let secrets: string[];
      try {
        body = render(d);
        secrets = [box.decrypt(d.secret)];
        if (d.previous_secret && d.previous_secret_expires_at && d.previous_secret_expires_at > new Date()) {
          secrets.push(box.decrypt(d.previous_secret));
        }
      } catch (err) {
        if (!(err instanceof SecretBoxError)) throw err;
        const reason = `cannot decrypt the endpoint's ${d.format === 'pagerduty' ? 'signing secret or routing key' : 'signing secret'}: ${err.message}. Put the key it was stored under in OPSFLOW_ENCRYPTION_KEY_PREVIOUS, or set the secret again (rotate-secret; PATCH routingKey)`;
        return record(d, input, startedAt, undefined, { kind: 'permanent', reason });
      }
      if (body === undefined) {
        const reason = `a ${d.format} endpoint does not take ${d.event_id}'s event type (it neither triggers nor resolves a condition)`;
        return record(d, input, startedAt, undefined, { kind: 'permanent', reason }, false);
      }
      let admission: string | undefined;
      if (d.rate_limit_per_second !== null) {
        // Paced only once the attempt is sure to send: the refusals above take no slot. Each wait here is at most
        // MAX_INLINE_WAIT_MS, well inside the heartbeat timeout; a send not admitted by then takes a new slot.
        const ctx = Context.current();
        const rate = d.rate_limit_per_second;
        let held = input.slotAt;
        for (;;) {
          const slot = await pace(deps.pool, d.endpoint_id, rate, held);
          if (slot.kind === 'later') {
            const next = { kind: 'paced', slotAt: slot.slotAt, wakeInMs: slot.wakeInMs } as const;
            return { attemptNo: input.attemptNo, endpointId: d.endpoint_id, next };
          }
          if (slot.waitMs > 0) await ctx.sleep(slot.waitMs);
          // In flight until its timeout at the latest (the address was resolved above; a second of margin on top).
          admission = await admitted(deps.pool, d.endpoint_id, rate, d.timeout_ms + 1000, (ms) => ctx.sleep(ms));
          if (admission !== undefined) break;
          held = undefined;
        }
      }
      const sentAt = new Date();
      const timestamp = Math.floor(sentAt.getTime() / 1000);
      // Heartbeats while waiting on a slow receiver let a dead worker's attempt be retried in seconds.
      const beat = setInterval(() => Context.current().heartbeat(), 1000);
      const answer = await sendWebhook({
        target,
        body,
        timeoutMs: d.timeout_ms,
        headers: {
          'content-type': 'application/json',
          'webhook-id': d.event_id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(secrets, d.event_id, timestamp, body),
        },
      }).finally(() => clearInterval(beat));
      if (admission !== undefined) {
        // The send stops counting against the limit now. A failure here must not fail the attempt (a retry would
        // send again): the send then counts until its in-flight bound, which only slows the endpoint a little.
        await sent(deps.pool, d.endpoint_id, admission).catch((err: unknown) =>
          deps.log.warn({ err, endpointId: d.endpoint_id }, 'could not record a paced send as answered'),
        );
      }
      const outcome = classify(answer, Date.now());
      // Recorded where the attempt happens, through the SDK's meter: the worker's Prometheus endpoint
      // (WORKER_METRICS_ADDRESS) exports it beside the SDK's own metrics, as a real histogram.
      Context.current()
        .metricMeter.createHistogram(
          'opsflow_webhook_attempt_latency',
          'int',
          'ms',
          'Webhook attempt latency (send to answer or error), by outcome',
        )
        .record(answer.latencyMs, { outcome: outcome.kind });
      return recordSent(() => record(d, input, sentAt, answer, outcome));
    },

    /** Emails ops and publishes an `endpoint.disabled` event (once per disabling). */
    async notifyEndpointDisabled(input: { endpointId: string; reason: string }): Promise<void> {
      const { rows } = await deps.pool.query<{
        url_origin: string;
        tenant_id: string | null;
        disabled_at: Date | null;
      }>('SELECT url_origin, tenant_id, disabled_at FROM opsflow.webhook_endpoints WHERE id = $1', [input.endpointId]);
      const ep = rows[0];
      if (!ep) return;
      const disabledAt = (ep.disabled_at ?? new Date()).toISOString();
      const host = hostOf(ep.url_origin);
      // The host, never the URL: its path and credentials are the endpoint's secrets. Only the endpoint's own
      // tenant (and the operator's endpoints, with no tenant) hear of it.
      await publishEvent(service, {
        type: 'endpoint.disabled',
        payload: { endpointId: input.endpointId, host, reason: input.reason, disabledAt },
        idempotencyKey: internalKey(`endpoint.disabled:${input.endpointId}:${disabledAt}`),
        ...(ep.tenant_id ? { tenantId: ep.tenant_id } : {}),
      });
      const to = deps.config.mail.opsEmail;
      if (!to) {
        deps.log.warn({ endpointId: input.endpointId }, 'endpoint disabled; OPS_EMAIL is unset, so nobody was emailed');
        return;
      }
      await deps.mailer.send({
        to,
        subject: `[opsflow] webhook endpoint disabled: ${host}`,
        text: [
          `The webhook endpoint ${input.endpointId} (${host}${ep.tenant_id ? `, tenant ${ep.tenant_id}` : ''}) was disabled at ${disabledAt}.`,
          `Reason: ${input.reason}.`,
          '',
          'It receives nothing until it is enabled again (PATCH /v1/endpoints/:id {"enabled": true});',
          'then redrive its dead letters with POST /v1/dead-letters/redrive {"endpointId": "..."}.',
        ].join('\n'),
        headers: { 'X-Opsflow-Idempotency-Key': `endpoint.disabled:${input.endpointId}:${disabledAt}` },
      });
    },

    /**
     * The scheduled redrive. First the DLQ's trend: more than WEBHOOK_DLQ_GROWING_THRESHOLD dead letters open than
     * after the previous run publishes `dlq.growing` (a PagerDuty trigger); the first run after that finds no
     * growth publishes `dlq.cleared` (its resolve). Then up to `limit` dead letters are redriven.
     */
    async redriveDeadLetterBatch(input: { limit: number }): Promise<{ redriven: number; failed: number }> {
      const openNow = async () =>
        (
          await deps.pool.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM opsflow.dead_letters WHERE resolved_at IS NULL',
          )
        ).rows[0]!.n;
      const { rows } = await deps.pool.query<{ active: boolean; detail: { open?: number } }>(
        `SELECT active, detail FROM opsflow.ops_conditions WHERE key = 'dlq'`,
      );
      const open = await openNow();
      const previous = rows[0]?.detail.open ?? 0;
      const wasActive = rows[0]?.active ?? false;
      const growing = open - previous >= deps.config.webhooks.dlqGrowingThreshold;
      const run = Context.current().info.workflowExecution?.runId ?? String(Date.now());
      if (growing) {
        await publishOpsEvent(
          service,
          'dlq.growing',
          { open, previous, newSinceLast: open - previous, threshold: deps.config.webhooks.dlqGrowingThreshold },
          `dlq.growing:${run}`,
        );
      } else if (wasActive) {
        await publishOpsEvent(service, 'dlq.cleared', { open, previous }, `dlq.cleared:${run}`);
      }
      const result = await redriveDeadLetters(service, { limit: input.limit, by: 'schedule' });
      // The next run compares with what is open after this one's redrive.
      await deps.pool.query(
        `INSERT INTO opsflow.ops_conditions (key, active, detail, updated_at) VALUES ('dlq', $1, $2, now())
         ON CONFLICT (key) DO UPDATE SET active = $1, detail = $2, updated_at = now()`,
        [growing, JSON.stringify({ open: await openNow() })],
      );
      return result;
    },

    /** An ordered endpoint's queue head: its oldest delivery not finished, by commit order (null: empty). */
    async fifoHead(input: { endpointId: string }): Promise<FifoHead | null> {
      const { rows } = await deps.pool.query<{
        id: string;
        event_type: string;
        tenant_id: string | null;
        attempts: number;
        url_origin: string;
        retry_schedule_ms: number[];
      }>(
        `SELECT d.id, d.event_type, d.tenant_id, d.attempts, ep.url_origin,
                coalesce(ev.retry_schedule_ms, ep.retry_schedule_ms) AS retry_schedule_ms
         FROM opsflow.webhook_deliveries d
         JOIN opsflow.webhook_endpoints ep ON ep.id = d.endpoint_id
         JOIN opsflow.webhook_events ev ON ev.id = d.event_id
         WHERE d.endpoint_id = $1 AND d.status IN ('pending', 'retrying')
         ORDER BY d.fifo_seq NULLS FIRST, d.created_at
         LIMIT 1`,
        [input.endpointId],
      );
      const d = rows[0];
      if (!d) return null;
      return {
        deliveryId: d.id,
        workflowType: service.workflowType,
        input: { deliveryId: d.id, retryScheduleMs: d.retry_schedule_ms, previousAttempts: d.attempts },
        eventType: d.event_type,
        host: hostOf(d.url_origin),
        tenantId: d.tenant_id,
      };
    },

    /** One batch of a recover (lib/webhooks/recover.ts): sent again, the cursor moved past it. */
    async recoverBatch(input: { recoverId: string }): Promise<RecoverStep> {
      try {
        return await recoverNextBatch(service, input.recoverId);
      } catch (err) {
        if (err instanceof WebhookError && err.code === 'not_found') {
          throw ApplicationFailure.create({ type: 'RecoverNotFound', message: err.message, nonRetryable: true });
        }
        throw err;
      }
    },

    async cleanupDeadLetters(input: { olderThanMs: number }): Promise<{ deleted: number }> {
      return { deleted: await cleanupDeadLetters(deps.pool, input.olderThanMs) };
    },
  };
};
