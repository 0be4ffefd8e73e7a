/**
 * /metrics over a large history: 100,000 attempt rows in a database of its own. The counts come from
 * trigger-maintained totals, so they must equal count(*) exactly, follow status changes, and the scrape must
 * not read the history (under 200 ms here).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, migrate, type Pool } from '../lib/db.js';
import { createHarness, testApp, type Harness } from './helpers/harness.js';
import { databaseUrlOf, dropDatabase, recreateDatabase } from './helpers/databases.js';

const value = (text: string, line: string) => {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.split(' ').at(-1));
};

describe('/metrics over 100k attempts', () => {
  let h: Harness;
  let pool: Pool;
  const db = `opsflow_metrics_scale_${process.pid}`;
  beforeAll(async () => {
    await recreateDatabase(db);
    pool = createPool(databaseUrlOf(db), 4);
    await migrate(pool);
    h = await createHarness();
    await pool.query(
      `INSERT INTO opsflow.webhook_endpoints (id, url, secret, retry_schedule_ms, timeout_ms)
         VALUES ('ep_scale', 'https://example.com/hook', 'whsec_x', '{1000}', 5000);
       INSERT INTO opsflow.webhook_events (id, type, body) SELECT 'evt_' || g, 'scale.test', '{}' FROM generate_series(1, 1000) g;
       INSERT INTO opsflow.webhook_deliveries (id, event_id, endpoint_id, event_type, status)
         SELECT 'dlv_' || g, 'evt_' || g, 'ep_scale', 'scale.test',
                CASE WHEN g % 10 = 0 THEN 'dead_lettered' ELSE 'delivered' END
         FROM generate_series(1, 1000) g;
       INSERT INTO opsflow.webhook_attempts (delivery_id, attempt_no, started_at, latency_ms, outcome, decision)
         SELECT 'dlv_' || d, a, now() - ((101 - a) || ' hours')::interval - (d || ' seconds')::interval, 20 + a, CASE WHEN a = 100 THEN 'success' ELSE 'retryable' END, '{}'
         FROM generate_series(1, 1000) d, generate_series(1, 100) a;
       ANALYZE opsflow.webhook_attempts; ANALYZE opsflow.webhook_deliveries;`,
    );
  }, 120_000);
  afterAll(async () => {
    await pool?.end();
    await h?.close();
    await dropDatabase(db);
  });

  const scrape = async () => {
    const res = await testApp(h, { pool }).request('/metrics');
    expect(res.status).toBe(200);
    return res.text();
  };

  it('counts what is there, exactly, from the maintained totals', async () => {
    const text = await scrape();
    expect(value(text, 'opsflow_webhook_attempts{outcome="retryable"}')).toBe(99_000);
    expect(value(text, 'opsflow_webhook_attempts{outcome="success"}')).toBe(1000);
    expect(value(text, 'opsflow_webhook_deliveries{status="delivered"}')).toBe(900);
    expect(value(text, 'opsflow_webhook_deliveries{status="dead_lettered"}')).toBe(100);
    // A status change moves one delivery between the counts; an attempt adds one.
    await pool.query(`UPDATE opsflow.webhook_deliveries SET status = 'pending' WHERE id = 'dlv_10'`);
    await pool.query(
      `INSERT INTO opsflow.webhook_attempts (delivery_id, attempt_no, started_at, latency_ms, outcome, decision)
       VALUES ('dlv_10', 101, now(), 5, 'gone', '{}')`,
    );
    const after = await scrape();
    expect(value(after, 'opsflow_webhook_deliveries{status="dead_lettered"}')).toBe(99);
    expect(value(after, 'opsflow_webhook_deliveries{status="pending"}')).toBe(1);
    expect(value(after, 'opsflow_webhook_attempts{outcome="gone"}')).toBe(1);
    const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM opsflow.webhook_attempts');
    expect(Number(rows[0]!.n)).toBe(100_001);
  });

  it('a scrape does not read the history: no sequential scan of it, under 200 ms with 100k attempts', async () => {
    // Every query a scrape sends, recorded, then explained: none may scan a history table.
    const seen: { text: string; values?: unknown[] }[] = [];
    const recording = new Proxy(pool, {
      get(target, prop) {
        if (prop === 'query') {
          return (text: string, values?: unknown[]) => {
            seen.push({ text, values });
            return target.query(text, values);
          };
        }
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const res = await testApp(h, { pool: recording }).request('/metrics');
    expect(res.status).toBe(200);
    expect(seen.length).toBeGreaterThan(5);
    const history = ['webhook_attempts', 'webhook_deliveries', 'webhook_events', 'dead_letters'];
    for (const { text, values } of seen) {
      const { rows } = await pool.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${text}`, values);
      const scans: string[] = [];
      const walk = (node: Record<string, unknown>) => {
        if (node['Node Type'] === 'Seq Scan') scans.push(String(node['Relation Name']));
        for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
      };
      walk((rows[0]!['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);
      expect(
        scans.filter((t) => history.includes(t)),
        text,
      ).toEqual([]);
    }

    await scrape(); // warm the connections
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await scrape();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    expect(times[2], `median of ${times.map((t) => t.toFixed(0)).join(', ')} ms`).toBeLessThan(200);
  });
});
