/**
 * Recording a webhook attempt: the attempt row, the delivery's new status, a dead letter, the endpoint's health,
 * in one transaction (one statement for the common case, delivered), with the decision of `nextStep`; and the
 * patience a sent attempt has with PostgreSQL. Used by `attemptDelivery` (activities/webhooks/index.ts).
 */
import { Context } from '@temporalio/activity';
import type { Config } from '../../lib/config.js';
import { withTransaction, type Pool } from '../../lib/db.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from '../../lib/logger.js';
import type { SendResult } from '../../lib/webhooks/send.js';
import type { EndpointFormat } from '../../lib/webhooks/formats.js';
import type { AttemptResult, NextStep } from '../../lib/webhooks/contract.js';
import { nextStep, type Outcome } from '../../workflows/webhooks/policy.js';

/** How long a sent attempt waits for PostgreSQL to take its record (a restart takes seconds). */
export const RECORD_PATIENCE_MS = 45_000;

export interface DeliveryRow {
  id: string;
  event_id: string;
  endpoint_id: string;
  body: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  timeout_ms: number;
  enabled: boolean;
  disabled_reason: string | null;
  deleted_at: Date | null;
  format: EndpointFormat;
  routing_key: string | null;
  rate_limit_per_second: number | null;
  condition_key: string | null;
  event_created_at: Date;
}

export interface AttemptInput {
  deliveryId: string;
  attemptNo: number;
  stepIndex: number;
  retryScheduleMs: number[];
  /** A send slot the endpoint's rate limit holds for this attempt (an earlier call answered `paced`). */
  slotAt?: string;
}

export function createAttemptRecorder(deps: { config: Config; pool: Pool; log: Logger }) {
  /**
   * The common case, delivered, as one statement (one round trip, atomic like the transaction below): the
   * endpoint's health, the attempt row, the delivery's status, and any dead letter a racing redrive left open.
   * The endpoint row is written only when it changes (failing until now) or its last success is over a second
   * old: one hot endpoint is not rewritten by every delivery.
   */
  async function recordDelivered(
    d: DeliveryRow,
    input: AttemptInput,
    startedAt: Date,
    answer: SendResult,
  ): Promise<AttemptResult> {
    const result: AttemptResult = {
      attemptNo: input.attemptNo,
      endpointId: d.endpoint_id,
      statusCode: answer.status,
      error: answer.error,
      next: { kind: 'delivered' },
    };
    await deps.pool.query(
      `WITH endpoint AS (
         UPDATE opsflow.webhook_endpoints SET failing_since = NULL, last_success_at = now()
         WHERE id = $2 AND (failing_since IS NOT NULL OR last_success_at IS NULL
                            OR last_success_at < now() - interval '1 second')
       ), attempt AS (
         INSERT INTO opsflow.webhook_attempts
           (delivery_id, attempt_no, started_at, latency_ms, status_code, error, response_body, outcome, decision)
         VALUES ($1, $3, $4, $5, $6, $7, $8, 'success', $9) ON CONFLICT DO NOTHING
       ), letters AS (
         UPDATE opsflow.dead_letters SET resolved_at = now(), resolution = 'redriven'
         WHERE delivery_id = $1 AND resolved_at IS NULL
       )
       UPDATE opsflow.webhook_deliveries SET status = 'delivered', attempts = GREATEST(attempts, $3),
         last_status_code = $6, last_error = $7, next_attempt_at = NULL, delivered_at = now(), updated_at = now()
       WHERE id = $1`,
      [
        d.id,
        d.endpoint_id,
        input.attemptNo,
        startedAt,
        answer.latencyMs,
        answer.status ?? null,
        result.error ?? null,
        answer.body ?? null,
        JSON.stringify(result),
      ],
    );
    return result;
  }

  async function record(
    d: DeliveryRow,
    input: AttemptInput,
    startedAt: Date,
    answer: SendResult | undefined,
    outcome: Outcome,
    /** False when nothing was tried (endpoint disabled or deleted): no attempt row, no attempt counted. */
    attempted = true,
    /** The decision when it is not the schedule's (a superseded PagerDuty event). */
    decided?: NextStep,
  ): Promise<AttemptResult> {
    let next: NextStep = decided ?? nextStep(outcome, input.stepIndex, input.retryScheduleMs);
    let endpointDisabled: string | undefined;
    if (outcome.kind === 'success' && attempted && next.kind === 'delivered') {
      return recordDelivered(d, input, startedAt, answer!);
    }
    return withTransaction(deps.pool, async (client) => {
      // Endpoint health first: it can turn this attempt's retry into a dead letter.
      if (outcome.kind === 'success') {
        await client.query(
          'UPDATE opsflow.webhook_endpoints SET failing_since = NULL, last_success_at = now() WHERE id = $1',
          [d.endpoint_id],
        );
      } else if (answer) {
        const reason =
          outcome.kind === 'gone'
            ? 'the endpoint answered 410 Gone'
            : `every delivery failed for more than ${Math.round(deps.config.webhooks.disableAfterMs / 1000)} s`;
        await client.query(
          'UPDATE opsflow.webhook_endpoints SET failing_since = COALESCE(failing_since, now()) WHERE id = $1',
          [d.endpoint_id],
        );
        // Only the attempt that flips `enabled` gets a row back: the disabling is reported once.
        const disabled = await client.query(
          `UPDATE opsflow.webhook_endpoints SET enabled = false, disabled_reason = $2, disabled_at = now()
           WHERE id = $1 AND enabled
             AND ($3 OR failing_since <= now() - ($4::bigint * interval '1 millisecond'))
           RETURNING id`,
          [d.endpoint_id, reason, outcome.kind === 'gone', deps.config.webhooks.disableAfterMs],
        );
        if (disabled.rowCount) {
          endpointDisabled = reason;
          if (next.kind === 'retry') next = { kind: 'dead_letter', reason: `endpoint disabled: ${reason}` };
        }
      }
      const result: AttemptResult = {
        attemptNo: input.attemptNo,
        endpointId: d.endpoint_id,
        statusCode: answer?.status,
        error:
          answer?.error ??
          (outcome.kind === 'permanent' ? outcome.reason : next.kind === 'superseded' ? next.reason : undefined),
        next,
        endpointDisabled,
      };
      if (attempted) {
        await client.query(
          `INSERT INTO opsflow.webhook_attempts
             (delivery_id, attempt_no, started_at, latency_ms, status_code, error, response_body, outcome, decision)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
          [
            d.id,
            input.attemptNo,
            startedAt,
            answer?.latencyMs ?? 0,
            answer?.status ?? null,
            result.error ?? null,
            answer?.body ?? null,
            outcome.kind,
            JSON.stringify(result),
          ],
        );
      }
      const status = {
        delivered: 'delivered',
        retry: 'retrying',
        dead_letter: 'dead_lettered',
        superseded: 'discarded',
      }[next.kind];
      await client.query(
        `UPDATE opsflow.webhook_deliveries SET status = $2, attempts = GREATEST(attempts, $3),
           last_status_code = $4, last_error = $5,
           next_attempt_at = CASE WHEN $6::bigint IS NULL THEN NULL ELSE now() + ($6::bigint * interval '1 millisecond') END,
           delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END, updated_at = now()
         WHERE id = $1`,
        [
          d.id,
          status,
          attempted ? input.attemptNo : 0,
          answer?.status ?? null,
          result.error ?? null,
          next.kind === 'retry' ? next.delayMs : null,
        ],
      );
      if (next.kind === 'dead_letter') {
        await client.query(
          `INSERT INTO opsflow.dead_letters (id, delivery_id, endpoint_id, event_type, reason)
           SELECT $1, d.id, d.endpoint_id, d.event_type, $3 FROM opsflow.webhook_deliveries d WHERE d.id = $2
           ON CONFLICT (delivery_id) WHERE resolved_at IS NULL DO NOTHING`,
          [newId('dl'), d.id, next.reason],
        );
      } else if (next.kind === 'delivered') {
        // A redrive racing a dead-lettering can leave one open; delivered closes it.
        await client.query(
          `UPDATE opsflow.dead_letters SET resolved_at = now(), resolution = 'redriven'
           WHERE delivery_id = $1 AND resolved_at IS NULL`,
          [d.id],
        );
      }
      return result;
    });
  }

  /**
   * Records an attempt whose request has been sent. Failing here would make the activity's retry send it again
   * (a duplicate at the receiver), so a database that is briefly away (a restart, a failover) is waited for,
   * heartbeating, for up to RECORD_PATIENCE_MS before the attempt gives up.
   */
  async function recordSent(write: () => Promise<AttemptResult>): Promise<AttemptResult> {
    const giveUpAt = Date.now() + RECORD_PATIENCE_MS;
    for (let wait = 250; ; wait = Math.min(wait * 2, 4000)) {
      try {
        return await write();
      } catch (err) {
        if (Date.now() + wait > giveUpAt || Context.current().cancellationSignal.aborted) throw err;
        deps.log.warn({ err, retryInMs: wait }, 'recording a sent webhook attempt failed; retrying the record');
        Context.current().heartbeat();
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  return { record, recordSent };
}
