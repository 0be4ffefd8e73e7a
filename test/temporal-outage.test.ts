/**
 * Temporal goes away (SIGKILL of its server) under a running API: the API, as `npm run api` runs it (with its
 * reachability probe), keeps answering fast — events are accepted (202) and stored for the reconciler, other
 * starts are refused with 503 `unavailable` — and once the server is back on its saved state every accepted
 * event is delivered exactly once. Real dev server (SQLite file, so it restarts with its state), real
 * PostgreSQL (a state database of this file's own), real HTTP receiver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../api/server.js';
import { startStrandedDeliveries, webhookServiceDeps } from '../lib/webhooks/service.js';
import { startWorkers, TEST_API_KEY, type Harness, type TestWorkers } from './helpers/harness.js';
import { respond, startReceiver, type Receiver } from './helpers/http.js';
import { waitFor } from './helpers/wait.js';
import { startOwnTemporalStack, type OwnTemporalStack } from './helpers/own-temporal.js';

describe('Temporal outage', () => {
  let stack: OwnTemporalStack;
  let h: Harness;
  let workers: TestWorkers | undefined;
  let api: RunningApi;
  let receiver: Receiver;

  async function call(method: string, p: string, body?: unknown) {
    const started = performance.now();
    const res = await fetch(`${api.url}${p}`, {
      method,
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, ms: performance.now() - started, text, headers: res.headers };
  }

  beforeAll(async () => {
    stack = await startOwnTemporalStack('outage');
    h = stack.h;
    workers = await startWorkers(h, ['webhooks']);
    api = await startApi({ config: h.config, log: h.log, apiKeys: [TEST_API_KEY] });
    receiver = await startReceiver(respond(200));
  });

  afterAll(async () => {
    await api?.close();
    await workers?.stop();
    await stack?.close();
    await receiver?.close();
  });

  it('answers within 2 s while Temporal is down (events 202 within 1 s), and loses nothing', async () => {
    const endpoint = await call('POST', '/v1/endpoints', { url: `${receiver.url}/hook`, eventTypes: ['outage.test'] });
    expect(endpoint.status, endpoint.text).toBe(201);
    const before = await call('POST', '/v1/events', { type: 'outage.test', payload: { n: 0 } });
    expect(before.status, before.text).toBe(202);
    await waitFor(
      () => receiver.requests.length,
      (n) => n === 1,
    );

    // The server dies; the workers lose it too.
    await workers!.stop();
    workers = undefined;
    await stack.kill();
    // The API's probe notices within a second (0.5 s interval, 0.4 s deadline).
    await new Promise((r) => setTimeout(r, 1500));

    const answers: { what: string; status: number; ms: number }[] = [];
    for (let n = 1; n <= 10; n++) {
      const r = await call('POST', '/v1/events', { type: 'outage.test', payload: { n } });
      answers.push({ what: 'POST /v1/events', status: r.status, ms: r.ms });
      expect(r.status, r.text).toBe(202);
      expect(r.ms).toBeLessThan(1000);
    }
    const backup = await call('POST', '/v1/backups', {});
    answers.push({ what: 'POST /v1/backups', status: backup.status, ms: backup.ms });
    expect(backup.status, backup.text).toBe(503);
    expect(JSON.parse(backup.text)).toMatchObject({ error: { code: 'unavailable' } });
    expect(backup.headers.get('retry-after')).toBe('5');
    const trigger = await call('POST', '/v1/schedules/opsflow:system-check/trigger');
    answers.push({ what: 'POST /v1/schedules/…/trigger', status: trigger.status, ms: trigger.ms });
    expect(trigger.status, trigger.text).toBe(503);
    const ready = await call('GET', '/ready');
    answers.push({ what: 'GET /ready', status: ready.status, ms: ready.ms });
    expect(ready.status).toBe(503);
    // Reads that need no Temporal still work.
    const deliveries = await call('GET', '/v1/deliveries?limit=50');
    expect(deliveries.status).toBe(200);
    expect((JSON.parse(deliveries.text) as { items: unknown[] }).items).toHaveLength(11);
    for (const a of answers) expect(a.ms, `${a.what} took ${Math.round(a.ms)} ms`).toBeLessThan(2000);
    const slowest = new Map<string, number>();
    for (const a of answers) slowest.set(a.what, Math.max(slowest.get(a.what) ?? 0, Math.round(a.ms)));
    console.log(`slowest answers during the outage (ms): ${JSON.stringify(Object.fromEntries(slowest))}`);

    // Back on its saved state: starts go through again, and the reconciler starts the stranded deliveries.
    await stack.restart();
    workers = await startWorkers(h, ['webhooks']);
    await waitFor(
      () => call('GET', '/ready').then((r) => r.status),
      (s) => s === 200,
      30_000,
    );
    const stranded = await startStrandedDeliveries(webhookServiceDeps(h.config, h.pool, h.client, h.queues), {
      olderThanMs: 0,
      limit: 100,
    });
    expect(stranded).toMatchObject({ started: 10, failed: 0 });
    await waitFor(
      () => receiver.requests.length,
      (n) => n >= 11,
      60_000,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const seen = receiver.requests
      .map((r) => (JSON.parse(r.body) as { data: { n: number } }).data.n)
      .sort((a, b) => a - b);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]); // every event once: none lost, none twice
    expect((await call('POST', '/v1/backups', {})).status).toBe(202);
  }, 180_000);
});
