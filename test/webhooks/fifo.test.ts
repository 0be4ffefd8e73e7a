/**
 * Ordered (FIFO) endpoints, end to end on the dev server with a real receiver: events reach an `ordering: "fifo"`
 * endpoint one at a time in publish order; a failing head is retried, dead-lettered, and the queue goes on; its
 * redrive goes to the back. An endpoint without ordering, fed the same way, gets them concurrently (what the
 * FIFO assertions would catch).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fifoWorkflowId } from '../../lib/webhooks/contract.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { apiCaller } from '../helpers/api.js';
import { saveHistory } from '../helpers/histories.js';
import { startReceiver, type Receiver } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

describe('ordered (fifo) endpoints', () => {
  let h: Harness;
  let workers: TestWorkers;
  const receivers: Receiver[] = [];
  let app: ReturnType<typeof testApp>;

  const api = apiCaller(() => app);

  /**
   * A receiver that takes 80 ms per request and notes, per request, the event's `n` and how many requests were in
   * flight; it answers 500 while `failing(n)` says so.
   */
  async function slowReceiver(failing: (n: number) => boolean) {
    const seen: { n: number; inFlight: number; status: number }[] = [];
    let inFlight = 0;
    const r = await startReceiver(async (req, res) => {
      inFlight += 1;
      const n = (JSON.parse(req.body) as { data: { n: number } }).data.n;
      const entry = { n, inFlight, status: failing(n) ? 500 : 200 };
      seen.push(entry);
      await new Promise((resolve) => setTimeout(resolve, 80));
      inFlight -= 1;
      res.writeHead(entry.status).end();
    });
    receivers.push(r);
    return { url: r.url, seen };
  }

  async function endpoint(url: string, extra: Record<string, unknown> = {}) {
    const type = `fifo.${randomBytes(4).toString('hex')}`;
    const res = await api<{ id: string; ordering: string }>('POST', '/v1/endpoints', {
      url,
      eventTypes: [type],
      retrySchedule: ['0s', '300ms'],
      timeoutMs: 2000,
      ...extra,
    });
    expect(res.status).toBe(201);
    return { ...res.body, type };
  }

  const publish = async (type: string, n: number) => {
    const res = await api<{ eventId: string; deliveries: { id: string }[] }>('POST', '/v1/events', {
      type,
      payload: { n },
    });
    expect(res.status).toBe(202);
    return res.body;
  };

  const statuses = async (endpointId: string) =>
    (
      await h.pool.query<{ status: string }>(
        `SELECT d.status FROM opsflow.webhook_deliveries d WHERE d.endpoint_id = $1 ORDER BY d.created_at`,
        [endpointId],
      )
    ).rows.map((r) => r.status);

  beforeAll(async () => {
    h = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    workers = await startWorkers(h, ['webhooks']);
    app = testApp(h);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  it('delivers one at a time in publish order; a dead-lettered head lets the queue go on', async () => {
    const r = await slowReceiver((n) => n === 0);
    const ep = await endpoint(r.url, { ordering: 'fifo' });
    expect(ep.ordering).toBe('fifo');
    for (let n = 0; n < 6; n++) await publish(ep.type, n);
    await waitFor(
      () => statuses(ep.id),
      (s) => s.length === 6 && s.every((x) => x === 'delivered' || x === 'dead_lettered'),
      60_000,
    );
    // Event 0 failed twice (its schedule) and was dead-lettered; only then did 1 go, and so on, never two at once.
    expect(r.seen.map((s) => s.n)).toEqual([0, 0, 1, 2, 3, 4, 5]);
    expect(Math.max(...r.seen.map((s) => s.inFlight))).toBe(1);
    expect(await statuses(ep.id)).toEqual([
      'dead_lettered',
      'delivered',
      'delivered',
      'delivered',
      'delivered',
      'delivered',
    ]);
    await saveHistory(fifoWorkflowId(ep.id), 'webhooks/fifo-sequencer.json');
  });

  it('a redriven dead letter goes to the back of the queue', async () => {
    let headFails = true;
    const r = await slowReceiver((n) => n === 0 && headFails);
    const ep = await endpoint(r.url, { ordering: 'fifo' });
    const first = await publish(ep.type, 0);
    await waitFor(
      () => statuses(ep.id),
      (s) => s[0] === 'dead_lettered',
      30_000,
    );
    headFails = false;
    // Two more queued behind a slow one, then the redrive: it is sent after them.
    await publish(ep.type, 1);
    await publish(ep.type, 2);
    expect((await api('POST', `/v1/deliveries/${first.deliveries[0]!.id}/retry`)).status).toBe(202);
    await publish(ep.type, 3);
    await waitFor(
      () => statuses(ep.id),
      (s) => s.length === 4 && s.every((x) => x === 'delivered'),
      60_000,
    );
    expect(r.seen.map((s) => s.n)).toEqual([0, 0, 1, 2, 0, 3]);
    expect(Math.max(...r.seen.map((s) => s.inFlight))).toBe(1);
    const dead = await h.pool.query<{ resolved: boolean }>(
      'SELECT resolved_at IS NOT NULL AS resolved FROM opsflow.dead_letters WHERE delivery_id = $1',
      [first.deliveries[0]!.id],
    );
    expect(dead.rows).toEqual([{ resolved: true }]);
  });

  it('an endpoint without ordering gets the same events concurrently', async () => {
    const r = await slowReceiver(() => false);
    const ep = await endpoint(r.url);
    expect(ep.ordering).toBe('none');
    await Promise.all([0, 1, 2, 3, 4, 5].map((n) => publish(ep.type, n)));
    await waitFor(
      () => statuses(ep.id),
      (s) => s.length === 6 && s.every((x) => x === 'delivered'),
      30_000,
    );
    expect(Math.max(...r.seen.map((s) => s.inFlight))).toBeGreaterThan(1);
  });

  it('ordering is fixed at create: a bad value and a PATCH are refused, nothing changed', async () => {
    const bad = await api('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/x', ordering: 'lifo' });
    expect(bad.status).toBe(400);
    const ep = await endpoint('http://127.0.0.1:9/x', { ordering: 'fifo' });
    const patch = await api('PATCH', `/v1/endpoints/${ep.id}`, { ordering: 'none' });
    expect(patch.status).toBe(400);
    const got = await api<{ ordering: string }>('GET', `/v1/endpoints/${ep.id}`);
    expect(got.body.ordering).toBe('fifo');
    expect((await api('DELETE', `/v1/endpoints/${ep.id}`)).status).toBe(204);
  });
});
