/**
 * Recover, end to end on the dev server with a real receiver: after a receiver's outage, `POST
 * /v1/endpoints/{id}/recover {since}` sends the window's failed deliveries again as one run — same webhook-id,
 * dead letters resolved naming the recover, progress on the row to `finished` — and leaves the delivered ones
 * alone; `status: "all"` sends those too; `until` closes the window. Refused: a window the wrong way round
 * (422), one larger than WEBHOOK_RECOVER_MAX_DELIVERIES (422, naming the count), an unknown endpoint (404), a
 * disabled one (409), a second recover while one runs (409); a running recover is canceled before its next
 * batch (and a finished one cannot be). The CLI's `opsflow recover` is in test/cli.test.ts's reach via the
 * typed client; here the API is called as a client would.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pace } from '../../lib/webhooks/pacing.js';
import { recoverWorkflowId } from '../../lib/webhooks/recover.js';
import { apiCaller } from '../helpers/api.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { saveHistory } from '../helpers/histories.js';
import { startReceiver, type Receiver } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

interface Recover {
  id: string;
  state: string;
  total: number;
  resent: number;
  status: string;
  error: string | null;
  until: string;
}

describe('recover an endpoint since a time', () => {
  let h: Harness;
  let workers: TestWorkers;
  let app: ReturnType<typeof testApp>;
  const receivers: Receiver[] = [];
  const api = apiCaller(() => app);

  beforeAll(async () => {
    h = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', WEBHOOK_RECOVER_MAX_DELIVERIES: '8' });
    workers = await startWorkers(h, ['webhooks']);
    app = testApp(h);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  /** A receiver that answers 500 while `down` is set, and its endpoint (two quick attempts, then dead letter). */
  async function flakyEndpoint(extra: Record<string, unknown> = {}) {
    const state = { down: false };
    const r = await startReceiver((_req, res) => void res.writeHead(state.down ? 500 : 200).end());
    receivers.push(r);
    const type = `recover.${randomBytes(4).toString('hex')}`;
    const made = await api<{ id: string }>('POST', '/v1/endpoints', {
      url: r.url,
      eventTypes: [type],
      retrySchedule: ['0s', '200ms'],
      ...extra,
    });
    expect(made.status).toBe(201);
    const publish = async (n: number) => {
      const res = await api<{ eventId: string; deliveries: { id: string }[] }>('POST', '/v1/events', {
        type,
        payload: { n },
      });
      expect(res.status).toBe(202);
      return { eventId: res.body.eventId, deliveryId: res.body.deliveries[0]!.id };
    };
    return { id: made.body.id, receiver: r, state, publish };
  }

  const statuses = async (ids: string[]) =>
    (
      await h.pool.query<{ status: string }>(
        'SELECT status FROM opsflow.webhook_deliveries WHERE id = ANY ($1) ORDER BY created_at',
        [ids],
      )
    ).rows.map((r) => r.status);

  const finished = (id: string) =>
    waitFor(
      async () => (await api<Recover>('GET', `/v1/recovers/${id}`)).body,
      (r) => r.state !== 'running',
      30_000,
    );

  /** The n of each request the receiver took, in order. */
  const ns = (r: Receiver) => r.requests.map((q) => (JSON.parse(q.body) as { data: { n: number } }).data.n);

  it('sends the failed deliveries of the window again, with their webhook-ids; all also the delivered ones', async () => {
    const ep = await flakyEndpoint();
    const since = new Date().toISOString();
    const ok = [await ep.publish(1), await ep.publish(2)];
    await waitFor(
      () => statuses(ok.map((d) => d.deliveryId)),
      (s) => s.every((x) => x === 'delivered'),
      15_000,
    );
    ep.state.down = true;
    const failed = [await ep.publish(3), await ep.publish(4), await ep.publish(5)];
    await waitFor(
      () => statuses(failed.map((d) => d.deliveryId)),
      (s) => s.every((x) => x === 'dead_lettered'),
      20_000,
    );
    ep.state.down = false;
    const before = ep.receiver.requests.length; // 2 delivered + 3 × 2 failed attempts
    expect(before).toBe(8);

    const started = await api<Recover>('POST', `/v1/endpoints/${ep.id}/recover`, { since });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect(started.body).toMatchObject({ state: 'running', total: 3, resent: 0, status: 'failed' });
    const done = await finished(started.body.id);
    expect(done).toMatchObject({ state: 'finished', total: 3, resent: 3, error: null });
    await waitFor(
      () => statuses(failed.map((d) => d.deliveryId)),
      (s) => s.every((x) => x === 'delivered'),
      15_000,
    );
    // Exactly the three failed ones again, each with the webhook-id it had.
    const again = ep.receiver.requests.slice(before);
    expect(again.map((q) => (JSON.parse(q.body) as { data: { n: number } }).data.n).sort()).toEqual([3, 4, 5]);
    expect(new Set(again.map((q) => q.headers['webhook-id']))).toEqual(new Set(failed.map((d) => d.eventId)));
    const letters = await h.pool.query<{ resolution: string; resolved_by: string }>(
      `SELECT resolution, resolved_by FROM opsflow.dead_letters WHERE delivery_id = ANY ($1)`,
      [failed.map((d) => d.deliveryId)],
    );
    expect(letters.rows).toHaveLength(3);
    for (const l of letters.rows) {
      expect(l.resolution).toBe('redriven');
      expect(l.resolved_by).toContain(started.body.id);
    }
    await saveHistory(recoverWorkflowId(started.body.id), 'webhooks/recover.json');

    // all: every delivery of the window, the delivered ones included; until closes it before event 5.
    const fifth = await h.pool.query<{ created_at: Date }>(
      'SELECT created_at FROM opsflow.webhook_deliveries WHERE id = $1',
      [failed[2]!.deliveryId],
    );
    const all = await api<Recover>('POST', `/v1/endpoints/${ep.id}/recover`, {
      since,
      until: fifth.rows[0]!.created_at.toISOString(),
      status: 'all',
    });
    expect(all.status, JSON.stringify(all.body)).toBe(202);
    expect(all.body.total).toBe(4);
    expect(await finished(all.body.id)).toMatchObject({ state: 'finished', resent: 4 });
    await waitFor(
      () => Promise.resolve(ep.receiver.requests.length),
      (n) => n === before + 3 + 4,
      15_000,
    );
    expect(
      ns(ep.receiver)
        .slice(before + 3)
        .sort(),
    ).toEqual([1, 2, 3, 4]);

    // Both listed, newest first, by endpoint.
    const list = await api<{ items: Recover[] }>('GET', `/v1/recovers?endpointId=${ep.id}`);
    expect(list.body.items.map((r) => r.id)).toEqual([all.body.id, started.body.id]);
  });

  it('refuses windows the wrong way round or too large, unknown and disabled endpoints, and a second run', async () => {
    const ep = await flakyEndpoint();
    const hourAgo = new Date(Date.now() - 3600_000).toISOString();
    const backwards = await api<{ error: { code: string; message: string } }>(
      'POST',
      `/v1/endpoints/${ep.id}/recover`,
      { since: new Date(Date.now() - 60_000).toISOString(), until: hourAgo },
    );
    expect(backwards.status).toBe(422);
    expect(backwards.body.error.message).toMatch(/must be before until/);
    const future = await api('POST', `/v1/endpoints/${ep.id}/recover`, {
      since: new Date(Date.now() + 3600_000).toISOString(),
    });
    expect(future.status).toBe(422);
    for (const body of [{}, { since: 'yesterday' }, { since: hourAgo, status: 'some' }, { since: hourAgo, x: 1 }]) {
      const bad = await api<{ error: { code: string } }>('POST', `/v1/endpoints/${ep.id}/recover`, body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.body.error.code).toBe('validation_failed');
    }
    const unknown = await api('POST', '/v1/endpoints/ep_nope/recover', { since: hourAgo });
    expect(unknown.status).toBe(404);
    expect((await api('GET', '/v1/recovers/rcv_nope')).status).toBe(404);

    // Nine deliveries in the window, more than the maximum of 8: refused, naming the count; nothing recorded.
    for (let n = 0; n < 9; n++) await ep.publish(n);
    await waitFor(
      async () =>
        (
          await h.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM opsflow.webhook_deliveries WHERE endpoint_id = $1 AND status = 'delivered'`,
            [ep.id],
          )
        ).rows[0]!.n,
      (n) => n === 9,
      15_000,
    );
    const tooMany = await api<{ error: { code: string; message: string } }>('POST', `/v1/endpoints/${ep.id}/recover`, {
      since: hourAgo,
      status: 'all',
    });
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.error.message).toContain('9 deliveries');
    expect(tooMany.body.error.message).toContain('WEBHOOK_RECOVER_MAX_DELIVERIES (8)');
    const rows = await h.pool.query('SELECT 1 FROM opsflow.webhook_recovers WHERE endpoint_id = $1', [ep.id]);
    expect(rows.rowCount).toBe(0);

    // Disabled: enable it first.
    expect((await api('PATCH', `/v1/endpoints/${ep.id}`, { enabled: false })).status).toBe(200);
    const disabled = await api<{ error: { code: string } }>('POST', `/v1/endpoints/${ep.id}/recover`, {
      since: hourAgo,
    });
    expect(disabled.status).toBe(409);
    expect(disabled.body.error.code).toBe('conflict');
  });

  it('one recover per endpoint at a time; a running one is canceled before its next batch', async () => {
    // A rate-limited endpoint whose send slots are booked 40 s ahead: the recover waits before its first batch.
    const ep = await flakyEndpoint({ rateLimitPerSecond: 1 });
    ep.state.down = true;
    const failed = [await ep.publish(1), await ep.publish(2)];
    await waitFor(
      () => statuses(failed.map((d) => d.deliveryId)),
      (s) => s.every((x) => x === 'dead_lettered'),
      20_000,
    );
    ep.state.down = false;
    const sent = ep.receiver.requests.length;
    for (let i = 0; i < 40; i++) await pace(h.pool, ep.id, 1);
    const since = new Date(Date.now() - 3600_000).toISOString();
    const first = await api<Recover>('POST', `/v1/endpoints/${ep.id}/recover`, { since });
    expect(first.status).toBe(202);
    // Its run looked, found the endpoint's slots booked too far ahead, and sleeps before its first batch.
    const handle = h.client.workflow.getHandle(recoverWorkflowId(first.body.id));
    await waitFor(
      async () => (await handle.fetchHistory()).events ?? [],
      (events) => events.some((e) => e.timerStartedEventAttributes),
      15_000,
    );
    const second = await api<{ error: { code: string; message: string } }>('POST', `/v1/endpoints/${ep.id}/recover`, {
      since,
    });
    expect(second.status).toBe(409);
    expect(second.body.error.message).toContain(first.body.id);
    const canceled = await api<Recover>('POST', `/v1/recovers/${first.body.id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body.state).toBe('canceled');
    expect(canceled.body.error).toMatch(/^canceled by /);
    const again = await api<{ error: { code: string } }>('POST', `/v1/recovers/${first.body.id}/cancel`);
    expect(again.status).toBe(409);
    // Its run ends without sending: the dead letters stay open, nothing reached the receiver.
    await waitFor(
      async () => (await handle.describe()).status.name,
      (s) => s === 'COMPLETED',
      40_000,
    );
    expect(await statuses(failed.map((d) => d.deliveryId))).toEqual(['dead_lettered', 'dead_lettered']);
    expect(ep.receiver.requests.length).toBe(sent);
    expect((await api<Recover>('GET', `/v1/recovers/${first.body.id}`)).body).toMatchObject({
      state: 'canceled',
      resent: 0,
    });
  }, 60_000);
});
