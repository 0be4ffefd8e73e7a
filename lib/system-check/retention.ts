/**
 * History retention: what the daily `historyRetention` workflow deletes, in batches (each its own short
 * transaction, so the tables stay writable and a killed run loses nothing but its place):
 *
 * - webhook deliveries that finished (`delivered`, `discarded`) before the webhook cutoff, with their attempts
 *   and resolved dead letters (ON DELETE CASCADE). Never a delivery still pending, retrying or dead-lettered,
 *   and never one with an open dead letter;
 * - then events older than the cutoff that no delivery refers to any more (their idempotency keys with them);
 * - the console's hourly attempt aggregates older than the webhook cutoff;
 * - system check runs, subscription audit rows and audit log rows older than their cutoffs.
 *
 * The metric counters are kept right by their triggers (attempts ever made stay counted: they were made).
 */
import type { Pool } from '../db.js';

export interface RetentionCutoffs {
  webhookMs: number;
  systemCheckMs: number;
  auditMs: number;
}

export interface PruneCounts {
  deliveries: number;
  events: number;
  systemCheckRuns: number;
  auditRows: number;
  /** Audit log rows (who did what through the API and console), on the same cutoff as subscription audit rows. */
  auditLog: number;
  /** Hourly attempt aggregates (the console's plots) older than the webhook cutoff. */
  attemptHours: number;
}

const older = (param: string) => `now() - (${param}::bigint * interval '1 millisecond')`;

const STATEMENTS: { key: keyof PruneCounts; cutoff: keyof RetentionCutoffs; sql: string }[] = [
  {
    key: 'deliveries',
    cutoff: 'webhookMs',
    sql: `DELETE FROM opsflow.webhook_deliveries WHERE id IN (
            SELECT d.id FROM opsflow.webhook_deliveries d
            WHERE d.status IN ('delivered', 'discarded') AND d.updated_at < ${older('$1')}
              AND NOT EXISTS (SELECT 1 FROM opsflow.dead_letters dl WHERE dl.delivery_id = d.id AND dl.resolved_at IS NULL)
            LIMIT $2)`,
  },
  {
    key: 'events',
    cutoff: 'webhookMs',
    sql: `DELETE FROM opsflow.webhook_events WHERE id IN (
            SELECT e.id FROM opsflow.webhook_events e
            WHERE e.created_at < ${older('$1')}
              AND NOT EXISTS (SELECT 1 FROM opsflow.webhook_deliveries d WHERE d.event_id = e.id)
            LIMIT $2)`,
  },
  {
    key: 'attemptHours',
    cutoff: 'webhookMs',
    sql: `DELETE FROM opsflow.webhook_attempt_hours WHERE (hour, outcome, bucket, shard) IN (
            SELECT hour, outcome, bucket, shard FROM opsflow.webhook_attempt_hours
            WHERE hour < date_trunc('hour', ${older('$1')}) LIMIT $2)`,
  },
  {
    key: 'systemCheckRuns',
    cutoff: 'systemCheckMs',
    sql: `DELETE FROM opsflow.system_check_runs WHERE workflow_id IN (
            SELECT workflow_id FROM opsflow.system_check_runs WHERE finished_at < ${older('$1')} LIMIT $2)`,
  },
  {
    key: 'auditRows',
    cutoff: 'auditMs',
    sql: `DELETE FROM opsflow.subscription_audit WHERE id IN (
            SELECT id FROM opsflow.subscription_audit WHERE at < ${older('$1')} LIMIT $2)`,
  },
  {
    key: 'auditLog',
    cutoff: 'auditMs',
    sql: `DELETE FROM opsflow.audit_log WHERE id IN (
            SELECT id FROM opsflow.audit_log WHERE at < ${older('$1')} LIMIT $2)`,
  },
];

/** Deletes everything past its cutoff, `batch` rows per statement; `onBatch` after each (a heartbeat). */
export async function pruneHistory(
  pool: Pool,
  cutoffs: RetentionCutoffs,
  opts: { batch: number; onBatch?: (counts: PruneCounts) => void },
): Promise<PruneCounts> {
  const counts: PruneCounts = {
    deliveries: 0,
    events: 0,
    systemCheckRuns: 0,
    auditRows: 0,
    auditLog: 0,
    attemptHours: 0,
  };
  for (const s of STATEMENTS) {
    for (;;) {
      const { rowCount } = await pool.query(s.sql, [cutoffs[s.cutoff], opts.batch]);
      const n = rowCount ?? 0;
      counts[s.key] += n;
      opts.onBatch?.(counts);
      if (n < opts.batch) break;
    }
  }
  return counts;
}
