/**
 * Chaos (issue 18, scenarios a and b): webhook load through the real API while (a) the Temporal server is
 * SIGKILLed and started again on its saved state, and (b) PostgreSQL is stopped and started again
 * (`pg_ctlcluster`). Workers and the delivery reconciler keep running through both, as in production. Counted
 * at the receiver by webhook-id: every accepted (202) event delivered, none twice.
 */
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../api/server.js';
import { webhookServiceDeps } from '../../lib/webhooks/service.js';
import { startDeliveryReconciler } from '../../worker/reconciler.js';
import { startWorkers, TEST_API_KEY, type Harness, type TestWorkers } from '../helpers/harness.js';
import { respond, startReceiver, type Receiver } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { startOwnTemporalStack, type OwnTemporalStack } from '../helpers/own-temporal.js';
import { countDeliveries, report, sleep, startLoad } from './figures.js';

const run = promisify(execFile);

/** Stops the machine's PostgreSQL cluster for `downMs`, then starts it and waits until it answers. */
async function bouncePostgres(downMs: number): Promise<number> {
  const version = (await readdir('/etc/postgresql').catch(() => [])).sort((a, b) => Number(a) - Number(b)).at(-1);
  if (!version) throw new Error('chaos scenario b needs a Debian PostgreSQL cluster (pg_ctlcluster, /etc/postgresql)');
  const asRoot = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const ctl = (action: string) =>
    run(asRoot[0] ?? 'pg_ctlcluster', [
      ...asRoot.slice(1),
      ...(asRoot.length ? ['pg_ctlcluster'] : []),
      '--skip-systemctl-redirect',
      version,
      'main',
      action,
      ...(action === 'stop' ? ['-m', 'fast'] : []),
    ]);
  const t0 = Date.now();
  await ctl('stop');
  await sleep(downMs);
  await ctl('start');
  for (;;) {
    const ready = await run('pg_isready', ['-q', '-h', '127.0.0.1', '-p', '5432']).then(
      () => true,
      () => false,
    );
    if (ready) return Date.now() - t0;
    if (Date.now() - t0 > 60_000) throw new Error('PostgreSQL did not come back within 60 s');
    await sleep(200);
  }
}

describe('chaos: webhook load through faults', () => {
  let stack: OwnTemporalStack;
  let h: Harness;
  let workers: TestWorkers;
  let reconciler: { stop(): Promise<void> };
  let api: RunningApi;
  let receiver: Receiver;

  beforeAll(async () => {
    stack = await startOwnTemporalStack('chaos_wh');
    h = stack.h;
    workers = await startWorkers(h, ['webhooks']);
    reconciler = startDeliveryReconciler(webhookServiceDeps(h.config, h.pool, h.client, h.queues), h.log, {
      intervalMs: 2000,
      olderThanMs: 2000,
      batch: 500,
    });
    api = await startApi({ config: h.config, log: h.log, apiKeys: [TEST_API_KEY] });
    receiver = await startReceiver(respond(200));
  });
  afterAll(async () => {
    await api?.close();
    await reconciler?.stop();
    await workers?.stop();
    await stack?.close();
    await receiver?.close();
  });

  async function endpointFor(type: string): Promise<void> {
    const res = await fetch(`${api.url}/v1/endpoints`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        url: `${receiver.url}/${type}`,
        eventTypes: [type],
        retrySchedule: ['1s', '2s', '5s', '10s'],
      }),
    });
    expect(res.status, await res.text()).toBe(201);
  }
  const receivedIds = (type: string) =>
    receiver.requests.filter((r) => r.path === `/${type}`).map((r) => String(r.headers['webhook-id']));

  /** Waits until every accepted event has reached the receiver (or 120 s), then a little longer for late twins. */
  async function settle(type: string, accepted: string[]) {
    const t0 = Date.now();
    await waitFor(
      () => countDeliveries(accepted, receivedIds(type)),
      (c) => c.lost.length === 0,
      120_000,
    ).catch(() => undefined);
    const drainedMs = Date.now() - t0;
    await sleep(3000);
    return { ...countDeliveries(accepted, receivedIds(type)), drainedMs };
  }

  it('(a) Temporal SIGKILLed under 20 events/s and restarted 4 s later: nothing accepted lost, nothing twice', async () => {
    const type = 'chaos.temporal';
    await endpointFor(type);
    const load = startLoad(api.url, TEST_API_KEY, type, 20);
    await sleep(3000);
    const killedAt = performance.now();
    await stack.kill();
    await sleep(4000);
    await stack.restart();
    const downMs = performance.now() - killedAt;
    await sleep(5000);
    const answers = await load.stop();
    const accepted = answers.filter((a) => a.status === 202).map((a) => a.eventId!);
    const refused = answers.filter((a) => a.status !== 202);
    const slowest = Math.max(...answers.map((a) => a.ms));
    const counted = await settle(type, accepted);
    await report({
      scenario: 'a. Temporal server SIGKILL',
      fault: `dev server SIGKILLed 3 s into 20 events/s, back on its SQLite state after ${(downMs / 1000).toFixed(1)} s`,
      accepted: accepted.length,
      delivered: counted.delivered,
      lost: counted.lost.length,
      duplicated: counted.duplicated.length,
      notes: `${refused.length} of ${answers.length} requests refused (${[...new Set(refused.map((r) => r.status))].join(', ') || 'none'}); slowest answer ${Math.round(slowest)} ms; all delivered ${(counted.drainedMs / 1000).toFixed(1)} s after the load stopped`,
    });
    expect(counted.lost, 'accepted but never delivered').toEqual([]);
    expect(counted.duplicated, 'delivered twice').toEqual([]);
    // Events are accepted while Temporal is down (stored for the reconciler), and never slowly.
    expect(refused, JSON.stringify(refused.slice(0, 3))).toEqual([]);
    expect(slowest).toBeLessThan(2000);
  }, 240_000);

  it('(b) PostgreSQL stopped for 3 s under 20 events/s: refused ones say so, accepted ones all arrive once', async () => {
    const type = 'chaos.postgres';
    await endpointFor(type);
    const load = startLoad(api.url, TEST_API_KEY, type, 20);
    await sleep(3000);
    const outageMs = await bouncePostgres(3000);
    await sleep(5000);
    const answers = await load.stop();
    const accepted = answers.filter((a) => a.status === 202).map((a) => a.eventId!);
    const refused = answers.filter((a) => a.status !== 202);
    const counted = await settle(type, accepted);
    await report({
      scenario: 'b. PostgreSQL restart',
      fault: `pg_ctlcluster stop -m fast 3 s into 20 events/s, start after 3 s (${(outageMs / 1000).toFixed(1)} s until it answered)`,
      accepted: accepted.length,
      delivered: counted.delivered,
      lost: counted.lost.length,
      duplicated: counted.duplicated.length,
      notes: `${refused.length} of ${answers.length} requests refused while PostgreSQL was down (${[...new Set(refused.map((r) => r.status))].join(', ') || 'none'}), slowest ${Math.round(Math.max(...answers.map((a) => a.ms)))} ms; all delivered ${(counted.drainedMs / 1000).toFixed(1)} s after the load stopped`,
    });
    expect(counted.lost, 'accepted but never delivered').toEqual([]);
    expect(counted.duplicated, 'delivered twice').toEqual([]);
    // A request PostgreSQL could not store is refused with 503 (try again), never a 500 or a silent 202.
    expect(
      refused.every((r) => r.status === 503),
      JSON.stringify(refused.slice(0, 3)),
    ).toBe(true);
    expect(accepted.length).toBeGreaterThan(100);
  }, 240_000);
});
