/**
 * The console's figures from the hourly attempt rollup (kept by a trigger, migration 017) and the dead-letter
 * depth walk, on a PostgreSQL database of this file's own with rows placed at known hours.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketQuantile, LATENCY_BOUNDS_MS, webhookSeries } from '../../lib/console/data.js';
import { createPool, migrate, type Pool } from '../../lib/db.js';
import { databaseUrlOf, dropDatabase, recreateDatabase } from '../helpers/databases.js';

const db = `opsflow_console_data_${process.pid}`;

describe('bucketQuantile', () => {
  const empty = () => new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  it('interpolates inside the bucket that holds the rank, as histogram_quantile does', () => {
    const h = empty();
    h[4] = 10; // [10, 20) ms
    expect(bucketQuantile(h, 0.5)).toBe(15);
    expect(bucketQuantile(h, 1)).toBe(20);
    h[0] = 10; // < 1 ms
    expect(bucketQuantile(h, 0.25)).toBe(0.5);
    expect(bucketQuantile(h, 0.75)).toBe(15);
  });
  it('has no answer for no attempts, and the lower bound for the open last bucket', () => {
    expect(bucketQuantile(empty(), 0.5)).toBeUndefined();
    const h = empty();
    h[LATENCY_BOUNDS_MS.length] = 3; // >= 30 s
    expect(bucketQuantile(h, 0.99)).toBe(30_000);
  });
});

describe('webhookSeries', () => {
  let pool: Pool;
  const now = new Date();
  const hourStart = Math.floor(now.getTime() / 3600_000) * 3600_000;
  const at = (hoursAgo: number) => new Date(hourStart - hoursAgo * 3600_000 + 60_000);

  beforeAll(async () => {
    await recreateDatabase(db);
    pool = createPool(databaseUrlOf(db), 2);
    await migrate(pool);
    await pool.query(
      `INSERT INTO opsflow.webhook_endpoints (id, url, secret, retry_schedule_ms, timeout_ms) VALUES ('ep', 'https://a.example/h', 'x', '{1000}', 5000);
       INSERT INTO opsflow.webhook_events (id, type, body) VALUES ('ev', 't', '{}');
       INSERT INTO opsflow.webhook_deliveries (id, event_id, endpoint_id, event_type) VALUES ('d1', 'ev', 'ep', 't');
       INSERT INTO opsflow.webhook_events (id, type, body) VALUES ('ev2', 't', '{}');
       INSERT INTO opsflow.webhook_deliveries (id, event_id, endpoint_id, event_type) VALUES ('d2', 'ev2', 'ep', 't');`,
    );
    // Two hours ago: 8 delivered at 3 ms, 2 failed at 150 ms; in separate statements, as attempts are recorded.
    for (let i = 1; i <= 10; i++) {
      await pool.query(
        `INSERT INTO opsflow.webhook_attempts (delivery_id, attempt_no, started_at, latency_ms, outcome, decision)
         VALUES ('d1', $1, $2, $3, $4, '{}')`,
        [i, at(2), i <= 8 ? 3 : 150, i <= 8 ? 'success' : 'retryable'],
      );
    }
    // Dead letters: one made 5 h ago and resolved 2 h ago, one made this hour and open.
    await pool.query(
      `INSERT INTO opsflow.dead_letters (id, delivery_id, endpoint_id, event_type, reason, created_at, resolved_at, resolution)
       VALUES ('dl1', 'd1', 'ep', 't', 'x', $1, $2, 'redriven'), ('dl2', 'd2', 'ep', 't', 'x', $3, NULL, NULL)`,
      [at(5), at(2), at(0)],
    );
  });
  afterAll(async () => {
    await pool?.end();
    await dropDatabase(db);
  });

  it('counts attempts by outcome per hour and takes latency quantiles from the rollup', async () => {
    const s = await webhookSeries(pool, '24h', now);
    expect(s.hours).toHaveLength(24);
    expect(s.hours[23]).toBe(hourStart / 1000);
    expect(s.attempts.success![21]).toBe(8);
    expect(s.attempts.retryable![21]).toBe(2);
    expect(s.attempts.success!.reduce((a, b) => a + b)).toBe(8);
    // 3 ms is in [2, 5): p50 at rank 5 of 8 there → 2 + 3 × 5/8; p95 and p99 in [100, 200).
    expect(s.latency.p50[21]).toBe(3.9);
    expect(s.latency.p95[21]).toBe(175); // rank 9.5: 100 + 100 × 1.5/2
    expect(s.latency.p99[21]).toBe(195);
    expect(s.latency.p50[20]).toBeNull();
    // Deliveries ended: delivered = success attempts; dead-lettered = dead letters made in the hour.
    expect(s.deliveries.delivered[21]).toBe(8);
    expect(s.deliveries.deadLettered[18]).toBe(1);
    expect(s.deliveries.deadLettered[23]).toBe(1);
    expect(s.deliveries.deadLettered.reduce((a, b) => a + b)).toBe(2);
    // The rollup is what the trigger kept: one row per (hour, outcome, bucket, shard) at most.
    const { rows } = await pool.query<{ n: string }>('SELECT sum(n) AS n FROM opsflow.webhook_attempt_hours');
    expect(Number(rows[0]!.n)).toBe(10);
  });

  it('walks the dead-letter depth back from the open count', async () => {
    const s = await webhookSeries(pool, '24h', now);
    // Index 23 is this hour (dl2 open: 1); hours 5..3 ago held dl1 until its resolution 2 h ago.
    expect(s.deadLetterDepth.slice(17)).toEqual([0, 1, 1, 1, 0, 0, 1]);
    const week = await webhookSeries(pool, '7d', now);
    expect(week.hours).toHaveLength(168);
    expect(week.deadLetterDepth.at(-1)).toBe(1);
    expect(week.deadLetterDepth[0]).toBe(0);
  });
});
