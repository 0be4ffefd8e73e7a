/**
 * Synthetic webhook history straight into PostgreSQL, for the benchmarks that measure reads over a large
 * history (bench:scale, bench:console): deliveries `from..to` (two attempts each, one second apart going back
 * from now, ten per event, over the given endpoints; 90 % delivered, 5 % retrying, 4 % dead-lettered with an
 * open dead letter, 1 % pending). The routes and the console read them as they read real ones; the triggers
 * keep the metric counters and the console's hourly rollup as they do for real attempts.
 */
import type { Pool } from '../lib/db.js';

export async function seedHistory(pool: Pool, from: number, to: number, endpoints: string[]): Promise<void> {
  await pool.query(
    `INSERT INTO opsflow.webhook_events (id, type, body, created_at)
     SELECT 'hev_' || g, 'hist.e' || (g % 20), '{}', now() - g * interval '1 second'
     FROM generate_series($1::int / 10 + 1, $2::int / 10 + 1) g
     ON CONFLICT DO NOTHING`,
    [from, to],
  );
  await pool.query(
    `INSERT INTO opsflow.webhook_deliveries (id, event_id, endpoint_id, event_type, status, attempts, created_at, updated_at, workflow_started_at)
     SELECT 'hdl_' || g, 'hev_' || (g / 10 + 1), ($3::text[])[1 + g % 10], 'hist.e' || ((g / 10 + 1) % 20),
       CASE WHEN g % 100 < 90 THEN 'delivered' WHEN g % 100 < 95 THEN 'retrying' WHEN g % 100 < 99 THEN 'dead_lettered' ELSE 'pending' END,
       2, now() - g * interval '1 second', now() - g * interval '1 second', now()
     FROM generate_series($1::int, $2::int) g`,
    [from, to, endpoints],
  );
  await pool.query(
    `INSERT INTO opsflow.webhook_attempts (delivery_id, attempt_no, started_at, latency_ms, status_code, outcome, decision)
     SELECT 'hdl_' || g, n, now() - g * interval '1 second', 40 + g % 200, CASE WHEN n = 2 THEN 200 ELSE 500 END,
       CASE WHEN n = 2 THEN 'delivered' ELSE 'failed' END, '{}'::jsonb
     FROM generate_series($1::int, $2::int) g, generate_series(1, 2) n`,
    [from, to],
  );
  await pool.query(
    `INSERT INTO opsflow.dead_letters (id, delivery_id, endpoint_id, event_type, reason, created_at)
     SELECT 'hdq_' || d.id, d.id, d.endpoint_id, d.event_type, 'bench', d.created_at
     FROM opsflow.webhook_deliveries d
     WHERE d.id IN (SELECT 'hdl_' || g FROM generate_series($1::int, $2::int) g WHERE g % 100 >= 95 AND g % 100 < 99)`,
    [from, to],
  );
  await pool.query(
    'ANALYZE opsflow.webhook_events, opsflow.webhook_deliveries, opsflow.webhook_attempts, opsflow.dead_letters',
  );
}

/** Sequential scans so far of the history tables (pg_stat_user_tables), by table. */
export const HISTORY_TABLES = ['webhook_deliveries', 'webhook_attempts', 'webhook_events', 'dead_letters'];
export async function seqScans(pool: Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ relname: string; seq_scan: string }>(
    `SELECT relname, seq_scan FROM pg_stat_user_tables WHERE schemaname = 'opsflow' AND relname = ANY ($1)`,
    [HISTORY_TABLES],
  );
  return Object.fromEntries(rows.map((r) => [r.relname, Number(r.seq_scan)]));
}
