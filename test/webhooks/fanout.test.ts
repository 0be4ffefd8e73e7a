/**
 * Fan-out: one event to many endpoints. The rows are written in one statement and the workflow starts go out a
 * bounded number at a time; an API process killed halfway through the starts loses nothing and sends nothing
 * twice — the starts it had not recorded are repeated by the reconciler as no-ops, the rest started once.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { webhookServiceDeps } from '../../lib/webhooks/service.js';
import { startDeliveryReconciler } from '../../worker/reconciler.js';
import { createHarness, startWorkers, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';
import { startReceiver, type Receiver } from '../helpers/http.js';
import { startLatencyProxy, type LatencyProxy } from '../helpers/latency-proxy.js';
import { spawnApi, type Child } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const ENDPOINTS = 150;
const headers = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };

describe('fan-out to many endpoints', () => {
  let h: Harness;
  let receiver: Receiver;
  let api: Child | undefined;
  let slowLink: LatencyProxy | undefined;

  beforeAll(async () => {
    h = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    receiver = await startReceiver((_req, res) => void res.writeHead(200).end('ok'));
  });
  afterAll(async () => {
    await api?.kill('SIGKILL');
    await slowLink?.close();
    await receiver.close();
    await h.close();
  });

  async function endpoints(type: string, n: number): Promise<void> {
    const app = testApp(h);
    for (let i = 0; i < n; i++) {
      const res = await app.request('/v1/endpoints', {
        method: 'POST',
        headers,
        body: JSON.stringify({ url: `${receiver.url}/${type}/${i}`, eventTypes: [type], retrySchedule: ['0s', '5s'] }),
      });
      expect(res.status).toBe(201);
    }
  }

  const startedCount = (eventId: string) =>
    h.pool
      .query<{ started: number; total: number }>(
        `SELECT count(workflow_started_at)::int AS started, count(*)::int AS total
         FROM opsflow.webhook_deliveries WHERE event_id = $1`,
        [eventId],
      )
      .then((q) => q.rows[0]!);

  it('an API process killed halfway through the starts: every delivery is started and sent exactly once', async () => {
    const type = `fanout.${randomBytes(4).toString('hex')}`;
    await endpoints(type, ENDPOINTS);
    // One start at a time, each at least 20 ms (Temporal behind a slow link): the 150 starts take 3 s or more, so
    // the kill lands while most are still to come however fast this machine is (here they took 0.5 s unslowed).
    slowLink = await startLatencyProxy(inject('temporalAddress'), 20);
    const spawned = await spawnApi(h, { WORKFLOW_START_CONCURRENCY: '1', TEMPORAL_ADDRESS: slowLink.address });
    api = spawned.api;
    const url = spawned.url;

    const t0 = performance.now();
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ type, payload: { n: 1 } }),
    });
    const answeredMs = performance.now() - t0;
    expect(res.status).toBe(202);
    const event = (await res.json()) as { eventId: string; deliveries: { id: string }[] };
    expect(event.deliveries).toHaveLength(ENDPOINTS);
    expect(answeredMs).toBeLessThan(5000); // answered while the starts go on (the bench measures the real figure)

    // The first batch of starts recorded: kill the process while the rest are in flight.
    const atKill = await waitFor(
      () => startedCount(event.eventId),
      (c) => c.started >= 50,
      30_000,
      10,
    );
    await api.kill('SIGKILL');
    const afterKill = await startedCount(event.eventId);
    // Halfway for real: some deliveries were never started (or never recorded) when the process died.
    expect(afterKill.started).toBeLessThan(ENDPOINTS);
    expect(afterKill.started).toBeGreaterThanOrEqual(atKill.started);

    const workers = await startWorkers(h, ['webhooks']);
    const reconciler = startDeliveryReconciler(webhookServiceDeps(h.config, h.pool, h.client, h.queues), h.log, {
      intervalMs: 300,
      olderThanMs: 0,
      batch: 500,
    });
    try {
      await waitFor(
        () =>
          h.pool
            .query<{ n: number }>(
              `SELECT count(*)::int AS n FROM opsflow.webhook_deliveries WHERE event_id = $1 AND status = 'delivered'`,
              [event.eventId],
            )
            .then((q) => q.rows[0]!.n),
        (n) => n === ENDPOINTS,
        120_000,
      );
      expect(await startedCount(event.eventId)).toEqual({ started: ENDPOINTS, total: ENDPOINTS });
      await new Promise((resolve) => setTimeout(resolve, 1000)); // more reconciler rounds: nothing sent twice
    } finally {
      await reconciler.stop();
      await workers.stop();
    }
    const mine = receiver.requests.filter((r) => r.path.startsWith(`/${type}/`));
    const perEndpoint = new Map<string, number>();
    for (const r of mine) perEndpoint.set(r.path, (perEndpoint.get(r.path) ?? 0) + 1);
    expect(perEndpoint.size).toBe(ENDPOINTS);
    expect([...perEndpoint.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(mine.map((r) => r.headers['webhook-id']))).toEqual(new Set([event.eventId]));
  });

  it('starts a fan-out a bounded number at a time, recording them as they go', async () => {
    const type = `fanout.${randomBytes(4).toString('hex')}`;
    await endpoints(type, 60);
    // Count the starts the client has in flight at once, through the real client.
    let inFlight = 0;
    let peak = 0;
    const start = h.client.workflow.start.bind(h.client.workflow);
    const counting = Object.assign(Object.create(h.client) as typeof h.client, {
      workflow: Object.assign(Object.create(h.client.workflow) as typeof h.client.workflow, {
        start: async (...args: Parameters<typeof start>) => {
          inFlight += 1;
          peak = Math.max(peak, inFlight);
          try {
            return await start(...args);
          } finally {
            inFlight -= 1;
          }
        },
      }),
    });
    // 60 deliveries are bulk work: they go at the bulk pace (BULK_START_CONCURRENCY), not WORKFLOW_START_CONCURRENCY.
    const app = testApp(h, {
      temporal: counting,
      config: { ...h.config, startConcurrency: 4, bulkStartConcurrency: 3 },
    });
    const res = await app.request('/v1/events', {
      method: 'POST',
      headers,
      body: JSON.stringify({ type, payload: {} }),
    });
    expect(res.status).toBe(202);
    const event = (await res.json()) as { eventId: string };
    await waitFor(
      () => startedCount(event.eventId),
      (c) => c.started === 60,
      30_000,
    );
    expect(peak).toBe(3);
  });
});
