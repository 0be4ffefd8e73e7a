/**
 * Per-endpoint rate limits, end to end on the dev server with real receivers: an endpoint limited to 5 a second
 * and an unlimited one get the same 30 events at once. The limited receiver, which takes each request up after a
 * random delay of its own, never handles more than 5 in any one-second window (sliding), nor receives more, yet
 * receives all 30 — each with one recorded attempt, none dead-lettered — while the unlimited one has all 30 within
 * seconds. The pacer's own rules (even slots, a held slot kept or given up when missed, far slots slept on; a send
 * counting from admission to answer) are checked against PostgreSQL directly. Bad limits 400.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryWorkflowId } from '../../lib/webhooks/contract.js';
import {
  admitted,
  MAX_INLINE_WAIT_MS,
  pace,
  sent,
  slotIntervalMicros,
  WAKE_LEAD_MS,
  WINDOW_MS,
} from '../../lib/webhooks/pacing.js';
import { apiCaller } from '../helpers/api.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { saveHistory } from '../helpers/histories.js';
import { startReceiver, type Receiver } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

/** The most arrivals in any window of `ms` (half-open), by arrival time. */
function maxInWindow(times: number[], ms: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < t.length; hi++) {
    while (t[hi]! - t[lo]! >= ms) lo += 1;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

describe('per-endpoint rate limits', () => {
  let h: Harness;
  let workers: TestWorkers;
  let app: ReturnType<typeof testApp>;
  const receivers: Receiver[] = [];
  const api = apiCaller(() => app);

  beforeAll(async () => {
    h = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    workers = await startWorkers(h, ['webhooks']);
    app = testApp(h);
  });
  afterAll(async () => {
    // Gone before the next file publishes: none of them is a catch-all, but their receivers close here.
    const { rows } = await h.pool.query<{ id: string }>(
      `SELECT id FROM opsflow.webhook_endpoints WHERE deleted_at IS NULL AND event_types[1] LIKE 'paced.%'`,
    );
    for (const { id } of rows) await api('DELETE', `/v1/endpoints/${id}`);
    await workers?.stop();
    await h?.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  const ownType = () => `paced.${randomBytes(4).toString('hex')}`;
  const receiver = async () => {
    const r = await startReceiver((_req, res) => void res.writeHead(200).end());
    receivers.push(r);
    return r;
  };

  it('holds the limit at the receiver while an unlimited endpoint gets the same events at once', async () => {
    const type = `paced.${randomBytes(4).toString('hex')}`;
    // The limited receiver takes each request up only after 0–250 ms of its own (a queue in front of it, a busy
    // event loop): the moments it handles them are what must never hold more than 5 in a second, whatever the
    // delay between a send and its handling. (Counting sends only at their admission let 6 through here.)
    const handled: number[] = [];
    const limited = await startReceiver(
      (_req, res) =>
        new Promise<void>((done) =>
          setTimeout(() => {
            handled.push(Date.now());
            res.writeHead(200).end();
            done();
          }, Math.random() * 250),
        ),
    );
    receivers.push(limited);
    const free = await receiver();
    const made = await api<{ id: string; rateLimitPerSecond: number | null }>('POST', '/v1/endpoints', {
      url: limited.url,
      eventTypes: [type],
      rateLimitPerSecond: 5,
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body.rateLimitPerSecond).toBe(5);
    const other = await api<{ id: string; rateLimitPerSecond: number | null }>('POST', '/v1/endpoints', {
      url: free.url,
      eventTypes: [type],
    });
    expect(other.body.rateLimitPerSecond).toBeNull();

    const started = Date.now();
    const published = await Promise.all(
      Array.from({ length: 30 }, (_, n) =>
        api<{ deliveries: { id: string; endpointId: string }[] }>('POST', '/v1/events', { type, payload: { n } }),
      ),
    );
    for (const p of published) expect(p.status).toBe(202);
    await waitFor(
      () => Promise.resolve(free.requests.length),
      (n) => n === 30,
      20_000,
    );
    const freeDone = Date.now() - started;
    await waitFor(
      () => Promise.resolve(handled.length),
      (n) => n >= 30,
      60_000,
    );
    const limitedDone = Date.now() - started;
    // Never more than 5 in any second at the receiver, by arrival or by handling; 30 at 5/s cannot take less than
    // 5 s (25 after the first 5).
    expect(maxInWindow(handled, 1000)).toBeLessThanOrEqual(5);
    expect(
      maxInWindow(
        limited.requests.map((r) => r.at),
        1000,
      ),
    ).toBeLessThanOrEqual(5);
    expect(limitedDone).toBeGreaterThan(5000);
    // The unlimited endpoint was not held up by its neighbour: all 30 long before the limited one had them.
    expect(freeDone).toBeLessThan(limitedDone - 2000);
    expect(
      maxInWindow(
        free.requests.map((r) => r.at),
        1000,
      ),
    ).toBeGreaterThan(5);

    // Each event once, each delivery delivered on its one recorded attempt: waiting for a slot is not an attempt.
    const ns = limited.requests
      .map((r) => (JSON.parse(r.body) as { data: { n: number } }).data.n)
      .sort((a, b) => a - b);
    expect(ns).toEqual(Array.from({ length: 30 }, (_, n) => n));
    const rows = await waitFor(
      async () =>
        (
          await h.pool.query<{ status: string; attempts: number; recorded: number }>(
            `SELECT d.status, d.attempts,
               (SELECT count(*)::int FROM opsflow.webhook_attempts a WHERE a.delivery_id = d.id) AS recorded
             FROM opsflow.webhook_deliveries d WHERE d.endpoint_id = $1`,
            [made.body.id],
          )
        ).rows,
      (r) => r.length === 30 && r.every((x) => x.status === 'delivered'),
      10_000,
    );
    expect(rows.every((r) => r.attempts === 1 && r.recorded === 1)).toBe(true);
    const dead = await h.pool.query('SELECT 1 FROM opsflow.dead_letters WHERE endpoint_id = $1', [made.body.id]);
    expect(dead.rowCount).toBe(0);

    // The last one waited on a durable timer for its slot: its history holds one.
    const last = published
      .flatMap((p) => p.body.deliveries)
      .filter((d) => d.endpointId === made.body.id)
      .at(-1)!;
    const history = await h.client.workflow.getHandle(deliveryWorkflowId(last.id)).fetchHistory();
    const kinds = new Set((history.events ?? []).map((e) => e.timerStartedEventAttributes && 'timer').filter(Boolean));
    expect(kinds.has('timer')).toBe(true);
    await saveHistory(deliveryWorkflowId(last.id), 'webhooks/paced.json');
  });

  it('changes and clears the limit; refuses limits that are not 1–1000 whole requests a second', async () => {
    const r = await receiver();
    // Other files publish into this database: an endpoint of this file takes only a type of its own.
    const made = await api<{ id: string }>('POST', '/v1/endpoints', { url: r.url, eventTypes: [ownType()] });
    expect(made.status).toBe(201);
    const set = await api<{ rateLimitPerSecond: number | null }>('PATCH', `/v1/endpoints/${made.body.id}`, {
      rateLimitPerSecond: 20,
    });
    expect(set.body.rateLimitPerSecond).toBe(20);
    const kept = await api<{ rateLimitPerSecond: number | null }>('PATCH', `/v1/endpoints/${made.body.id}`, {
      description: 'unchanged limit',
    });
    expect(kept.body.rateLimitPerSecond).toBe(20);
    const cleared = await api<{ rateLimitPerSecond: number | null }>('PATCH', `/v1/endpoints/${made.body.id}`, {
      rateLimitPerSecond: null,
    });
    expect(cleared.body.rateLimitPerSecond).toBeNull();
    for (const bad of [0, -1, 1001, 2.5, '10', true]) {
      const create = await api<{ error: { code: string; details: { path: string }[] } }>('POST', '/v1/endpoints', {
        url: r.url,
        rateLimitPerSecond: bad,
      });
      expect(create.status, JSON.stringify(bad)).toBe(400);
      expect(create.body.error.code).toBe('validation_failed');
      const patch = await api('PATCH', `/v1/endpoints/${made.body.id}`, { rateLimitPerSecond: bad });
      expect(patch.status, JSON.stringify(bad)).toBe(400);
    }
    const { rows } = await h.pool.query<{ rate_limit_per_second: number | null }>(
      'SELECT rate_limit_per_second FROM opsflow.webhook_endpoints WHERE id = $1',
      [made.body.id],
    );
    expect(rows[0]!.rate_limit_per_second).toBeNull();
  });

  it('the pacer: even slots by PostgreSQL’s clock, a held slot kept even when late, far ones slept on', async () => {
    const r = await receiver();
    const made = await api<{ id: string }>('POST', '/v1/endpoints', {
      url: r.url,
      eventTypes: [ownType()],
      rateLimitPerSecond: 10,
    });
    const id = made.body.id;
    const interval = slotIntervalMicros(10) / 1000; // 105 ms
    const first = await pace(h.pool, id, 10);
    expect(first).toMatchObject({ kind: 'send' });
    // Taken back to back: each exactly one interval after the one before.
    const slots: string[] = [first.slotAt];
    for (let i = 0; i < 20; i++) slots.push((await pace(h.pool, id, 10)).slotAt);
    const gaps = await h.pool.query<{ gap: number }>(
      `SELECT (extract(epoch FROM s - lag(s) OVER (ORDER BY n)) * 1000)::float8 AS gap
       FROM unnest($1::timestamptz[]) WITH ORDINALITY AS t(s, n) ORDER BY n OFFSET 1`,
      [slots],
    );
    expect(gaps.rows.map((g) => g.gap)).toEqual(slots.slice(1).map(() => interval));
    // 40 slots ahead (> 3 s): not waited for inline, but held and slept on until just before it.
    for (let i = 0; i < 20; i++) await pace(h.pool, id, 10);
    const far = await pace(h.pool, id, 10);
    expect(far.kind).toBe('later');
    if (far.kind !== 'later') return;
    expect(far.wakeInMs).toBeGreaterThan(MAX_INLINE_WAIT_MS - WAKE_LEAD_MS);
    // Holding it, nothing new is taken: the same slot comes back (still far), and the next free slot is unchanged.
    const before = await h.pool.query<{ next: string }>(
      'SELECT next_slot_at::text AS next FROM opsflow.endpoint_pacing WHERE endpoint_id = $1',
      [id],
    );
    const again = await pace(h.pool, id, 10, far.slotAt);
    expect(again).toMatchObject({ kind: 'later', slotAt: far.slotAt });
    const after = await h.pool.query<{ next: string }>(
      'SELECT next_slot_at::text AS next FROM opsflow.endpoint_pacing WHERE endpoint_id = $1',
      [id],
    );
    expect(after.rows[0]!.next).toBe(before.rows[0]!.next);
    // A held slot already past goes at once (admission keeps the limit), and takes no new slot.
    const missed = await h.pool.query<{ at: string }>(`SELECT (clock_timestamp() - interval '2 seconds')::text AS at`);
    const late = await pace(h.pool, id, 10, missed.rows[0]!.at);
    expect(late).toEqual({ kind: 'send', slotAt: missed.rows[0]!.at, waitMs: 0 });
    const unchanged = await h.pool.query<{ next: string }>(
      'SELECT next_slot_at::text AS next FROM opsflow.endpoint_pacing WHERE endpoint_id = $1',
      [id],
    );
    expect(unchanged.rows[0]!.next).toBe(before.rows[0]!.next);
    // Nothing was sent by the pacer itself.
    expect(r.requests).toHaveLength(0);
  });

  it('admission: a send counts from its admission until its answer, in flight until its bound', async () => {
    const r = await receiver();
    const made = await api<{ id: string }>('POST', '/v1/endpoints', {
      url: r.url,
      eventTypes: [ownType()],
      rateLimitPerSecond: 2,
    });
    const id = made.body.id;
    let slept = 0;
    const sleep = async (ms: number) => {
      slept += ms;
      await new Promise((done) => setTimeout(done, ms));
    };
    const a = await admitted(h.pool, id, 2, 30_000, sleep);
    const b = await admitted(h.pool, id, 2, 30_000, sleep);
    expect(a).toBeTypeOf('string');
    expect(b).toBeTypeOf('string');
    expect(slept).toBe(0);
    // Two in flight at 2/s: a third is not admitted, and is told so at once rather than after its inline wait (the
    // window frees only 30 s on).
    const t0 = Date.now();
    expect(await admitted(h.pool, id, 2, 30_000, sleep)).toBeUndefined();
    expect(slept).toBe(0);
    expect(Date.now() - t0).toBeLessThan(MAX_INLINE_WAIT_MS);
    // One answered: it counts until now, so WINDOW_MS on its place is free; the other still counts until its bound.
    await sent(h.pool, id, a!);
    const { rows } = await h.pool.query<{ until_ms: number[] }>(
      `SELECT array_agg((extract(epoch FROM v - clock_timestamp()) * 1000)::float8 ORDER BY v) AS until_ms
       FROM opsflow.endpoint_pacing, unnest(recent) v WHERE endpoint_id = $1`,
      [id],
    );
    expect(rows[0]!.until_ms).toHaveLength(2);
    expect(rows[0]!.until_ms[0]).toBeLessThanOrEqual(0);
    expect(rows[0]!.until_ms[1]).toBeGreaterThan(25_000);
    await new Promise((done) => setTimeout(done, WINDOW_MS + 50));
    const c = await admitted(h.pool, id, 2, 30_000, sleep);
    expect(c).toBeTypeOf('string');
    // b and c in flight: full again. Marking an unknown token answered changes nothing.
    await sent(h.pool, id, '2000-01-01 00:00:00+00');
    expect(await admitted(h.pool, id, 2, 30_000, sleep)).toBeUndefined();
    // Both answered: after the window, two more go at once.
    await sent(h.pool, id, b!);
    await sent(h.pool, id, c!);
    await new Promise((done) => setTimeout(done, WINDOW_MS + 50));
    slept = 0;
    expect(await admitted(h.pool, id, 2, 1000, sleep)).toBeTypeOf('string');
    expect(await admitted(h.pool, id, 2, 1000, sleep)).toBeTypeOf('string');
    expect(slept).toBe(0);
    expect(r.requests).toHaveLength(0);
  });
});
