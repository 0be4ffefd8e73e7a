/**
 * Webhook delivery end to end: the API, a real Temporal server, real PostgreSQL, real HTTP receivers on
 * loopback and a real SMTP server. Retry schedules are in milliseconds so the whole matrix runs in seconds.
 */
import { createSecretBox } from '../../lib/secret-box.js';
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookServiceDeps } from '../../lib/webhooks/service.js';
import { redriveDeadLetters } from '../../lib/webhooks/redrive.js';
import { fairLimiter } from '../../lib/bulk-starts.js';
import { startDeliveryReconciler } from '../../worker/reconciler.js';
import { OpsKind, OpsStatus, WebhookEvent, WebhookHost } from '../../lib/search-attributes.js';
import {
  deliveryWorkflowId,
  WEBHOOK_DLQ_CLEANUP_WORKFLOW,
  WEBHOOK_DLQ_REDRIVE_WORKFLOW,
} from '../../lib/webhooks/contract.js';
import { createHarness, testApp, startWorkers, type Harness, type TestWorkers } from '../helpers/harness.js';
import { internalKey } from '../../lib/webhooks/ops-events.js';
import { apiCaller, authHeaders } from '../helpers/api.js';
import { saveHistory } from '../helpers/histories.js';
import { respond, startReceiver, type Handler, type Receiver } from '../helpers/http.js';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.js';
import { uiView } from '../helpers/ui.js';
import { waitFor } from '../helpers/wait.js';

/** An independent Standard Webhooks verifier, written from the spec rather than from lib/. */
function verifies(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const content = `${String(headers['webhook-id'])}.${String(headers['webhook-timestamp'])}.${body}`;
  const expected = `v1,${createHmac('sha256', key).update(content).digest('base64')}`;
  return String(headers['webhook-signature'] ?? '')
    .split(' ')
    .includes(expected);
}

describe('webhook delivery', () => {
  let h: Harness;
  let workers: TestWorkers;
  let smtp: SmtpCapture;
  let app: ReturnType<typeof testApp>;
  const receivers: Receiver[] = [];
  const auth = authHeaders();

  const api = apiCaller(() => app);

  async function receiver(handler: Handler): Promise<Receiver> {
    const r = await startReceiver(handler);
    receivers.push(r);
    return r;
  }

  /** An endpoint for `url` subscribed to one event type of its own, so tests never see each other's events. */
  async function endpoint(url: string, extra: Record<string, unknown> = {}) {
    const type = `test.${randomBytes(4).toString('hex')}`;
    const res = await api<{ id: string; secret: string }>('POST', '/v1/endpoints', {
      url,
      eventTypes: [type],
      retrySchedule: ['0s', '300ms', '300ms'],
      timeoutMs: 1000,
      ...extra,
    });
    expect(res.status).toBe(201);
    return { ...res.body, type };
  }

  async function publish(type: string, payload: unknown = { hello: 'world' }) {
    const res = await api<{ eventId: string; deliveries: { id: string; endpointId: string }[] }>('POST', '/v1/events', {
      type,
      payload,
    });
    expect(res.status).toBe(202);
    return res.body;
  }

  async function finished(deliveryId: string) {
    return h.client.workflow.getHandle(deliveryWorkflowId(deliveryId)).result() as Promise<{
      status: string;
      attempts: number;
    }>;
  }

  async function detail(deliveryId: string) {
    const res = await api<{
      status: string;
      attempts: { attemptNo: number; statusCode: number | null; error: string | null; responseBody: string | null }[];
    }>('GET', `/v1/deliveries/${deliveryId}`);
    expect(res.status).toBe(200);
    return res.body;
  }

  async function openDeadLetters(deliveryId: string) {
    const { rows } = await h.pool.query<{ id: string }>(
      'SELECT id FROM opsflow.dead_letters WHERE delivery_id = $1 AND resolved_at IS NULL',
      [deliveryId],
    );
    return rows;
  }

  beforeAll(async () => {
    smtp = await startSmtpCapture();
    h = await createHarness({
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      // Timers under a second fire after about a second on the dev server; 3 s keeps other tests clear of it.
      WEBHOOK_DISABLE_AFTER: '3s',
      WEBHOOK_DLQ_GROWING_THRESHOLD: '3',
      SMTP_URL: smtp.url,
      OPS_EMAIL: 'ops@example.com',
    });
    workers = await startWorkers(h, ['webhooks']);
    app = testApp(h);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await smtp?.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  it('delivers a signed Standard Webhooks request and records it everywhere', async () => {
    const r = await receiver(respond(200, 'thanks'));
    const ep = await endpoint(`${r.url}/hook`);
    const event = await publish(ep.type, { order: 42, note: 'ünïcode' });
    expect(event.deliveries).toEqual([{ id: expect.any(String) as string, endpointId: ep.id }]);
    const deliveryId = event.deliveries[0]!.id;
    expect(await finished(deliveryId)).toMatchObject({ status: 'delivered', attempts: 1 });

    expect(r.requests).toHaveLength(1);
    const req = r.requests[0]!;
    expect(req.path).toBe('/hook');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['webhook-id']).toBe(event.eventId);
    expect(Math.abs(Number(req.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
    expect(verifies(ep.secret, req.headers, req.body)).toBe(true);
    expect(verifies(`whsec_${randomBytes(24).toString('base64')}`, req.headers, req.body)).toBe(false);
    expect(JSON.parse(req.body)).toMatchObject({ type: ep.type, data: { order: 42, note: 'ünïcode' } });

    const d = await detail(deliveryId);
    expect(d.status).toBe('delivered');
    expect(d.attempts).toEqual([expect.objectContaining({ attemptNo: 1, statusCode: 200, responseBody: 'thanks' })]);
    const desc = await h.client.workflow.getHandle(deliveryWorkflowId(deliveryId)).describe();
    expect(desc.typedSearchAttributes.get(OpsKind)).toBe('webhook');
    expect(desc.typedSearchAttributes.get(OpsStatus)).toBe('delivered');
    expect(desc.typedSearchAttributes.get(WebhookEvent)).toBe(ep.type);
    expect(desc.typedSearchAttributes.get(WebhookHost)).toBe(new URL(r.url).host);
    await saveHistory(deliveryWorkflowId(deliveryId), 'webhooks/delivered.json');
  });

  it('retries 500 then delivers, with the same webhook-id on every attempt', async () => {
    let calls = 0;
    const r = await receiver((_req, res) => {
      calls += 1;
      res.writeHead(calls === 1 ? 500 : 200).end(calls === 1 ? 'boom' : 'ok');
    });
    const ep = await endpoint(r.url);
    const event = await publish(ep.type);
    expect(await finished(event.deliveries[0]!.id)).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(r.requests.map((q) => q.headers['webhook-id'])).toEqual([event.eventId, event.eventId]);
    expect(r.requests.every((q) => verifies(ep.secret, q.headers, q.body))).toBe(true);
    expect((await detail(event.deliveries[0]!.id)).attempts.map((a) => a.statusCode)).toEqual([500, 200]);
  });

  it("an event's own retrySchedule overrides the endpoint's, for its attempts and its redrive", async () => {
    let calls = 0;
    // 500 to the endpoint-only event (1) and the overriding event's first run (2-4) and first redrive attempt (5).
    const r = await receiver((_req, res) => void res.writeHead(++calls <= 5 ? 500 : 200).end());
    const ep = await endpoint(r.url, { retrySchedule: ['0s'] }); // the endpoint alone: one attempt, then DLQ
    const plain = await publish(ep.type);
    expect(await finished(plain.deliveries[0]!.id)).toMatchObject({ status: 'dead_lettered', attempts: 1 });

    const res = await api<{ eventId: string; deliveries: { id: string }[] }>('POST', '/v1/events', {
      type: ep.type,
      payload: { urgent: true },
      retrySchedule: ['0s', '200ms', '200ms'],
    });
    expect(res.status).toBe(202);
    const id = res.body.deliveries[0]!.id;
    expect(await finished(id)).toMatchObject({ status: 'dead_lettered', attempts: 3 });
    // This file's WEBHOOK_DISABLE_AFTER is 3 s; the endpoint's failing streak is not what is tested here.
    await h.pool.query('UPDATE opsflow.webhook_endpoints SET failing_since = NULL WHERE id = $1', [ep.id]);
    // A redrive keeps the event's schedule: attempt 4 fails and is retried (the endpoint's schedule would
    // dead-letter it), attempt 5 is delivered.
    expect((await api('POST', `/v1/deliveries/${id}/retry`)).status).toBe(202);
    expect(await finished(id)).toMatchObject({ status: 'delivered', attempts: 5 });
    expect((await detail(id)).attempts.map((a) => a.statusCode)).toEqual([500, 500, 500, 500, 200]);

    // Bad schedules are refused with the envelope, and nothing is published.
    const before = r.requests.length;
    for (const [retrySchedule, message] of [
      [[], /retrySchedule/],
      [['0s', 'soon'], /"soon" is not a duration/],
      [['8d'], /at most 7d/],
      ['5m', /retrySchedule/],
    ] as const) {
      const bad = await api<{ error: { code: string; message: string } }>('POST', '/v1/events', {
        type: ep.type,
        payload: {},
        retrySchedule,
      });
      expect(bad.status, JSON.stringify(retrySchedule)).toBe(400);
      expect(bad.body.error.code).toBe('validation_failed');
      expect(bad.body.error.message).toMatch(message);
    }
    const { rows } = await h.pool.query('SELECT count(*)::int AS n FROM opsflow.webhook_events WHERE type = $1', [
      ep.type,
    ]);
    expect(rows[0]).toEqual({ n: 2 });
    expect(r.requests.length).toBe(before);
  });

  it('the Temporal UI says what a delivery is doing: attempt, next time, last answer', async () => {
    let calls = 0;
    const r = await receiver((_req, res) => {
      calls += 1;
      res.writeHead(calls === 1 ? 503 : 200).end();
    });
    const ep = await endpoint(r.url, { retrySchedule: ['0s', '1h'] });
    const deliveryId = (await publish(ep.type)).deliveries[0]!.id;
    const waiting = await waitFor(
      () => uiView(h.client, deliveryWorkflowId(deliveryId)),
      (v) => v.details.startsWith('attempt 1'),
    );
    expect(waiting.summary).toBe(`${ep.type} → ${new URL(r.url).host}`);
    expect(waiting.details).toMatch(/^attempt 1 of 2 failed \(503\); next at \d\d:\d\d:\d\d UTC$/);
    const [, hh, mm, ss] = waiting.details.match(/(\d\d):(\d\d):(\d\d)/)!.map(Number);
    const inAnHour = new Date(Date.now() + 3600_000);
    const off =
      (hh! * 3600 + mm! * 60 + ss! - (inAnHour.getUTCHours() * 3600 + inAnHour.getUTCMinutes() * 60) + 86_400) % 86_400;
    expect(Math.min(off, 86_400 - off)).toBeLessThan(120); // an hour from now, give or take the test's own pace
    // Retry now cuts the hour's wait; the finished run says how it ended.
    expect((await api('POST', `/v1/deliveries/${deliveryId}/retry`)).status).toBe(202);
    expect(await finished(deliveryId)).toMatchObject({ status: 'delivered', attempts: 2 });
    expect((await uiView(h.client, deliveryWorkflowId(deliveryId))).details).toBe('delivered on attempt 2 (200)');
  });

  it('an event accepted while Temporal refuses starts is not stranded: the reconciler starts it, once', async () => {
    const r = await receiver(respond(200));
    const ep = await endpoint(r.url);
    // The same server, a namespace it does not have: every start is refused, the way an outage refuses it.
    const refusing = new Client({
      connection: h.client.connection,
      namespace: `missing-${randomBytes(3).toString('hex')}`,
    });
    const res = await testApp(h, { temporal: refusing }).request('/v1/events', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ type: ep.type, payload: { n: 1 } }),
    });
    expect(res.status).toBe(202); // committed: accepted, whatever Temporal said
    const deliveryId = ((await res.json()) as { deliveries: { id: string }[] }).deliveries[0]!.id;
    const unstarted = () =>
      h.pool
        .query('SELECT 1 FROM opsflow.webhook_deliveries WHERE id = $1 AND workflow_started_at IS NULL', [deliveryId])
        .then((q) => q.rowCount);
    expect(await unstarted()).toBe(1);
    await expect(h.client.workflow.getHandle(deliveryWorkflowId(deliveryId)).describe()).rejects.toThrow(
      WorkflowNotFoundError,
    );
    // Operators see the backlog once it is over a minute old (and an alert fires after 10 minutes of it).
    const backlog = async () => {
      const text = await (await app.request('/metrics')).text();
      return Number(/^opsflow_webhook_deliveries_unstarted (\d+)$/m.exec(text)?.[1]);
    };
    expect(await backlog()).toBe(0);
    await h.pool.query(
      `UPDATE opsflow.webhook_deliveries SET created_at = now() - interval '2 minutes' WHERE id = $1`,
      [deliveryId],
    );
    expect(await backlog()).toBe(1);

    const reconciler = startDeliveryReconciler(webhookServiceDeps(h.config, h.pool, h.client, h.queues), h.log, {
      intervalMs: 200,
      olderThanMs: 0,
      batch: 100,
    });
    try {
      await waitFor(unstarted, (n) => n === 0, 10_000);
      expect(await backlog()).toBe(0);
      expect(await finished(deliveryId)).toMatchObject({ status: 'delivered', attempts: 1 });
      await new Promise((resolve) => setTimeout(resolve, 600)); // a few more rounds: nothing started twice
    } finally {
      await reconciler.stop();
    }
    // One request: the reconciler's later rounds found the row marked, and a finished delivery's id is never
    // reused (REJECT_DUPLICATE), so nothing ran twice.
    expect(r.requests).toHaveLength(1);
  });

  it('honours Retry-After on 503, and caps it by the largest step on 429', async () => {
    let calls503 = 0;
    const r503 = await receiver((_req, res) => {
      calls503 += 1;
      if (calls503 === 1) res.writeHead(503, { 'retry-after': '1' }).end();
      else res.writeHead(200).end();
    });
    let calls429 = 0;
    const r429 = await receiver((_req, res) => {
      calls429 += 1;
      if (calls429 === 1) res.writeHead(429, { 'retry-after': '3600' }).end();
      else res.writeHead(200).end();
    });
    const ep503 = await endpoint(r503.url, { retrySchedule: ['0s', '100ms', '2s'] });
    const ep429 = await endpoint(r429.url, { retrySchedule: ['0s', '100ms', '500ms'] });
    const [e503, e429] = await Promise.all([publish(ep503.type), publish(ep429.type)]);
    await Promise.all([finished(e503.deliveries[0]!.id), finished(e429.deliveries[0]!.id)]);
    const gap503 = r503.requests[1]!.at - r503.requests[0]!.at;
    const gap429 = r429.requests[1]!.at - r429.requests[0]!.at;
    expect(gap503).toBeGreaterThanOrEqual(950); // waited the asked 1 s, not the 100 ms step
    expect(gap429).toBeLessThan(3000); // asked an hour, capped at the 500 ms largest step
  });

  it('410 Gone disables the endpoint at once, dead-letters, emails ops and records endpoint.disabled', async () => {
    const r = await receiver(respond(410));
    const ep = await endpoint(r.url);
    const event = await publish(ep.type);
    const deliveryId = event.deliveries[0]!.id;
    expect(await finished(deliveryId)).toMatchObject({ status: 'dead_lettered', attempts: 1 });
    expect(r.requests).toHaveLength(1);
    expect(await openDeadLetters(deliveryId)).toHaveLength(1);
    const epNow = await api<{ enabled: boolean; disabledReason: string }>('GET', `/v1/endpoints/${ep.id}`);
    expect(epNow.body).toMatchObject({ enabled: false, disabledReason: expect.stringContaining('410') as string });
    const { rows } = await h.pool.query<{ body: string }>(
      "SELECT body FROM opsflow.webhook_events WHERE type = 'endpoint.disabled' AND body LIKE $1",
      [`%${ep.id}%`],
    );
    expect(rows).toHaveLength(1);
    // The id, host and reason: never the URL (its path and credentials are the endpoint's secrets).
    const data = (JSON.parse(rows[0]!.body) as { data: Record<string, unknown> }).data;
    expect(data).toMatchObject({ endpointId: ep.id, host: new URL(r.url).host });
    expect(Object.keys(data).sort()).toEqual(['disabledAt', 'endpointId', 'host', 'reason']);
    expect(rows[0]!.body).not.toContain(r.url);
    const mails = await waitFor(
      () => smtp.messages.filter((m) => m.text?.includes(ep.id)),
      (m) => m.length === 1,
    );
    expect(mails[0]!.subject).toContain('webhook endpoint disabled');

    // A disabled endpoint receives nothing: a new event creates no delivery for it.
    const again = await publish(ep.type);
    expect(again.deliveries).toEqual([]);
  });

  it('treats a redirect as a failure and does not follow it; exhaustion leaves exactly one dead letter', async () => {
    const target = await receiver(respond(200));
    const r = await receiver(respond(301, '', { location: `${target.url}/elsewhere` }));
    const ep = await endpoint(r.url);
    const event = await publish(ep.type);
    const deliveryId = event.deliveries[0]!.id;
    expect(await finished(deliveryId)).toMatchObject({ status: 'dead_lettered', attempts: 3 });
    expect(r.requests).toHaveLength(3);
    expect(target.requests).toHaveLength(0);
    expect(await openDeadLetters(deliveryId)).toHaveLength(1);
    const list = await api<{ items: { deliveryId: string }[] }>('GET', `/v1/dead-letters?endpointId=${ep.id}`);
    expect(list.body.items.map((i) => i.deliveryId)).toEqual([deliveryId]);
    expect((await uiView(h.client, deliveryWorkflowId(deliveryId))).details).toBe(
      'dead-lettered after attempt 3: retry schedule exhausted after 3 attempts (last 301)',
    );
    await saveHistory(deliveryWorkflowId(deliveryId), 'webhooks/dead-lettered.json');
  });

  it('times out a receiver that hangs, and reports a reset connection', async () => {
    const hang = await receiver(() => undefined); // never answers
    const reset = await receiver((req, res) => {
      res.socket?.destroy();
    });
    const epHang = await endpoint(hang.url, { retrySchedule: ['0s'] });
    const epReset = await endpoint(reset.url, { retrySchedule: ['0s'] });
    const [eh, er] = await Promise.all([publish(epHang.type), publish(epReset.type)]);
    await Promise.all([finished(eh.deliveries[0]!.id), finished(er.deliveries[0]!.id)]);
    expect((await detail(eh.deliveries[0]!.id)).attempts[0]!.error).toMatch(/timed out after 1000 ms/);
    expect((await detail(er.deliveries[0]!.id)).attempts[0]!.error).toMatch(/ECONNRESET|socket hang up/);
  });

  it('keeps only the first 1 KiB of a 10 MB answer', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('x'.repeat(10 * 1024 * 1024));
    });
    const ep = await endpoint(r.url);
    const event = await publish(ep.type);
    expect(await finished(event.deliveries[0]!.id)).toMatchObject({ status: 'delivered' });
    const body = (await detail(event.deliveries[0]!.id)).attempts[0]!.responseBody!;
    expect(body).toBe('x'.repeat(1024));
  });

  it('redrive resumes with the same webhook-id and closes the dead letter', async () => {
    let healthy = false;
    const r = await receiver((_req, res) => void res.writeHead(healthy ? 200 : 500).end());
    const ep = await endpoint(r.url, { retrySchedule: ['0s', '100ms'] });
    const event = await publish(ep.type);
    const deliveryId = event.deliveries[0]!.id;
    expect(await finished(deliveryId)).toMatchObject({ status: 'dead_lettered', attempts: 2 });

    healthy = true;
    const retry = await api('POST', `/v1/deliveries/${deliveryId}/retry`);
    expect(retry.status).toBe(202);
    expect(await finished(deliveryId)).toMatchObject({ status: 'delivered', attempts: 3 });
    expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(new Set([event.eventId]));
    expect(await openDeadLetters(deliveryId)).toHaveLength(0);
    const d = await detail(deliveryId);
    expect(d.status).toBe('delivered');
    expect(d.attempts.map((a) => a.attemptNo)).toEqual([1, 2, 3]);
  });

  it('bulk redrive and discard of dead letters', async () => {
    let healthy = false;
    const r = await receiver((_req, res) => void res.writeHead(healthy ? 204 : 502).end());
    const ep = await endpoint(r.url, { retrySchedule: ['0s'] });
    const events = await Promise.all([publish(ep.type), publish(ep.type), publish(ep.type)]);
    const ids = events.map((e) => e.deliveries[0]!.id);
    await Promise.all(ids.map((id) => finished(id)));
    const list = await api<{ items: { id: string; deliveryId: string }[] }>(
      'GET',
      `/v1/dead-letters?endpointId=${ep.id}`,
    );
    expect(list.body.items).toHaveLength(3);

    const toDiscard = list.body.items.find((i) => i.deliveryId === ids[0])!;
    expect((await api('POST', `/v1/dead-letters/${toDiscard.id}/discard`)).status).toBe(200);
    expect((await api('POST', `/v1/dead-letters/${toDiscard.id}/discard`)).status).toBe(409);
    expect((await api('POST', '/v1/dead-letters/dl_nope/discard')).status).toBe(404);

    healthy = true;
    const redrive = await api<{ redriven: number }>('POST', '/v1/dead-letters/redrive', {
      endpointId: ep.id,
      limit: 10,
    });
    expect(redrive.body).toEqual({ redriven: 2, failed: 0 });
    expect(await Promise.all(ids.slice(1).map((id) => finished(id)))).toEqual([
      expect.objectContaining({ status: 'delivered' }),
      expect.objectContaining({ status: 'delivered' }),
    ]);
    expect((await detail(ids[0]!)).status).toBe('discarded');
    const again = await api<{ redriven: number }>('POST', '/v1/dead-letters/redrive', { endpointId: ep.id });
    expect(again.body.redriven).toBe(0);
  });

  it('a redrive whose caller stopped waiting sends nothing more and reopens the rest, to be redriven again', async () => {
    let healthy = false;
    const r = await receiver((_req, res) => void res.writeHead(healthy ? 204 : 502).end());
    const ep = await endpoint(r.url, { retrySchedule: ['0s'] });
    const ids = (await Promise.all([publish(ep.type), publish(ep.type)])).map((e) => e.deliveries[0]!.id);
    await Promise.all(ids.map((id) => finished(id)));
    healthy = true;
    // The process's bulk limiter is busy with another job for 3 s; the caller waits 300 ms: it is answered then,
    // nothing sent, both reopened — not after the other job.
    const bulk = fairLimiter(1);
    const other = bulk.lane()(() => new Promise((r) => setTimeout(r, 3000)));
    const service = { ...webhookServiceDeps(h.config, h.pool, h.client, h.queues), bulkStarts: bulk };
    const t0 = performance.now();
    const late = await redriveDeadLetters(
      service,
      { endpointId: ep.id, limit: 10, by: 'test' },
      { answerBy: Date.now() + 300 },
    );
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(late).toEqual({ redriven: 0, failed: 2 });
    await other;
    const open = await api<{ items: { deliveryId: string }[] }>('GET', `/v1/dead-letters?endpointId=${ep.id}`);
    expect(open.body.items.map((i) => i.deliveryId).sort()).toEqual([...ids].sort());
    expect((await detail(ids[0]!)).status).toBe('dead_lettered');
    const again = await api<{ redriven: number }>('POST', '/v1/dead-letters/redrive', { endpointId: ep.id });
    expect(again.body).toEqual({ redriven: 2, failed: 0 });
    expect(await Promise.all(ids.map((id) => finished(id)))).toEqual([
      expect.objectContaining({ status: 'delivered' }),
      expect.objectContaining({ status: 'delivered' }),
    ]);
  });

  it('the scheduled DLQ chores run as workflows: a redrive batch by the schedule, then cleanup of resolved ones', async () => {
    let healthy = false;
    const r = await receiver((_req, res) => void res.writeHead(healthy ? 204 : 502).end());
    const ep = await endpoint(r.url, { retrySchedule: ['0s'] });
    const still = await endpoint((await receiver(respond(503))).url, { retrySchedule: ['0s'] });
    const ids = (await Promise.all([publish(ep.type), publish(ep.type)])).map((e) => e.deliveries[0]!.id);
    const stillId = (await publish(still.type)).deliveries[0]!.id;
    await Promise.all([...ids, stillId].map((id) => finished(id)));
    // The still-failing endpoint is disabled by hand: its dead letter stays open through both chores.
    expect((await api('PATCH', `/v1/endpoints/${still.id}`, { enabled: false })).status).toBe(200);
    const letters = async (deliveryIds: string[]) =>
      (
        await h.pool.query<{ delivery_id: string; resolution: string | null; resolved_by: string | null }>(
          'SELECT delivery_id, resolution, resolved_by FROM opsflow.dead_letters WHERE delivery_id = ANY ($1) ORDER BY delivery_id',
          [deliveryIds],
        )
      ).rows;
    expect(await letters(ids)).toHaveLength(2);

    healthy = true;
    const redriven: unknown = await h.client.workflow.execute(WEBHOOK_DLQ_REDRIVE_WORKFLOW, {
      taskQueue: h.queues.webhooks,
      workflowId: `dlq-redrive-${randomBytes(3).toString('hex')}`,
      args: [{ limit: 1000 }],
    });
    expect((redriven as { redriven: number }).redriven).toBeGreaterThanOrEqual(2);
    expect(await Promise.all(ids.map((id) => finished(id)))).toEqual([
      expect.objectContaining({ status: 'delivered' }),
      expect.objectContaining({ status: 'delivered' }),
    ]);
    expect((await letters(ids)).map((l) => [l.resolution, l.resolved_by])).toEqual([
      ['redriven', 'schedule'],
      ['redriven', 'schedule'],
    ]);

    const cleaned: unknown = await h.client.workflow.execute(WEBHOOK_DLQ_CLEANUP_WORKFLOW, {
      taskQueue: h.queues.webhooks,
      workflowId: `dlq-cleanup-${randomBytes(3).toString('hex')}`,
      args: [{ olderThanMs: 0 }],
    });
    expect((cleaned as { deleted: number }).deleted).toBeGreaterThanOrEqual(2);
    expect(await letters(ids)).toEqual([]);
    expect(await letters([stillId])).toEqual([{ delivery_id: stillId, resolution: null, resolved_by: null }]);
  });

  it('the scheduled redrive publishes dlq.growing when dead letters pile up, and dlq.cleared when they stop', async () => {
    const runRedrive = async () => {
      const workflowId = `dlq-redrive-${randomBytes(3).toString('hex')}`;
      await h.client.workflow.execute(WEBHOOK_DLQ_REDRIVE_WORKFLOW, {
        taskQueue: h.queues.webhooks,
        workflowId,
        args: [{ limit: 1000 }],
      });
      const desc = await h.client.workflow.getHandle(workflowId).describe();
      const { rows } = await h.pool.query<{ type: string; body: string }>(
        'SELECT type, body FROM opsflow.webhook_events WHERE idempotency_key = ANY ($1)',
        [[internalKey(`dlq.growing:${desc.runId}`), internalKey(`dlq.cleared:${desc.runId}`)]],
      );
      return rows.map((r) => ({ type: r.type, data: (JSON.parse(r.body) as { data: Record<string, unknown> }).data }));
    };
    // A baseline run: whatever earlier tests left is the previous count from here on.
    await runRedrive();
    const quiet = await runRedrive();
    expect(quiet.filter((e) => e.type === 'dlq.growing')).toEqual([]);

    // Three new dead letters on an endpoint then disabled (the redrive skips it, they stay open): the threshold.
    const ep = await endpoint((await receiver(respond(500))).url, { retrySchedule: ['0s'] });
    const events = await Promise.all([1, 2, 3].map(() => publish(ep.type)));
    await Promise.all(events.map((e) => finished(e.deliveries[0]!.id)));
    expect((await api('PATCH', `/v1/endpoints/${ep.id}`, { enabled: false })).status).toBe(200);
    const grew = await runRedrive();
    expect(grew.map((e) => e.type)).toEqual(['dlq.growing']);
    expect(grew[0]!.data).toMatchObject({ threshold: 3, workflowId: expect.any(String) as string });
    expect(grew[0]!.data.newSinceLast).toBeGreaterThanOrEqual(3);
    const condition = await h.pool.query(`SELECT active FROM opsflow.ops_conditions WHERE key = 'dlq'`);
    expect(condition.rows).toEqual([{ active: true }]);

    // Nothing new: the condition clears, once.
    expect((await runRedrive()).map((e) => e.type)).toEqual(['dlq.cleared']);
    expect(await runRedrive()).toEqual([]);
  });

  it('disables an endpoint that has failed for longer than WEBHOOK_DISABLE_AFTER', async () => {
    const r = await receiver(respond(500));
    const ep = await endpoint(r.url, { retrySchedule: ['0s', '3200ms', '30s'] });
    const event = await publish(ep.type);
    const result = await finished(event.deliveries[0]!.id);
    expect(result).toMatchObject({ status: 'dead_lettered', attempts: 2 }); // not 3: disabled after 3 s of failures
    const epNow = await api<{ enabled: boolean; disabledReason: string }>('GET', `/v1/endpoints/${ep.id}`);
    expect(epNow.body.enabled).toBe(false);
    expect(epNow.body.disabledReason).toMatch(/failed for more than/);
    await waitFor(
      () => smtp.messages.filter((m) => m.text?.includes(ep.id)),
      (m) => m.length === 1,
    );

    // Re-enabled, redrive works again.
    expect((await api('PATCH', `/v1/endpoints/${ep.id}`, { enabled: true })).status).toBe(200);
    const redrive = await api<{ redriven: number }>('POST', '/v1/dead-letters/redrive', { endpointId: ep.id });
    expect(redrive.body.redriven).toBe(1);
  });

  it('refuses at delivery a URL that reaches a private address outside the allow-list', async () => {
    // 127.0.0.2 is loopback too, but only 127.0.0.1/32 is allowed; inserted directly, as if the
    // allow-list had changed since the endpoint was created.
    const r = await receiver(respond(200));
    const port = new URL(r.url).port;
    const type = `test.${randomBytes(4).toString('hex')}`;
    await h.pool.query(
      `INSERT INTO opsflow.webhook_endpoints (id, url, event_types, secret, retry_schedule_ms, timeout_ms)
       VALUES ($1, $2, $3, $4, '{0,100}', 1000)`,
      [
        `ep_ssrf_${type}`,
        `http://127.0.0.2:${port}/`,
        [type],
        createSecretBox(h.config.encryption).encrypt(`whsec_${randomBytes(24).toString('base64')}`),
      ],
    );
    const event = await publish(type);
    const result = await finished(event.deliveries[0]!.id);
    expect(result).toMatchObject({ status: 'dead_lettered', attempts: 1 }); // non-retryable: no second attempt
    expect(r.requests).toHaveLength(0);
    expect((await detail(event.deliveries[0]!.id)).attempts[0]!.error).toMatch(/URL refused/);
  });

  it('fans out to every endpoint subscribed to the type, and only those', async () => {
    const [a, b, c] = await Promise.all([receiver(respond(200)), receiver(respond(200)), receiver(respond(200))]);
    const type = `fan.${randomBytes(4).toString('hex')}`;
    const other = `fan.${randomBytes(4).toString('hex')}`;
    const mk = async (url: string, eventTypes: string[]) =>
      (await api<{ id: string }>('POST', '/v1/endpoints', { url, eventTypes, retrySchedule: ['0s'] })).body.id;
    const epA = await mk(a.url, [type]);
    const epB = await mk(b.url, [type, other]);
    await mk(c.url, [other]);
    const event = await publish(type);
    expect(event.deliveries.map((d) => d.endpointId).sort()).toEqual([epA, epB].sort());
    await Promise.all(event.deliveries.map((d) => finished(d.id)));
    expect([a.requests.length, b.requests.length, c.requests.length]).toEqual([1, 1, 0]);
  });

  it("tenants: an event reaches its tenant's endpoints and those with none; idempotency keys are per tenant", async () => {
    const [a, b, ops] = await Promise.all([receiver(respond(200)), receiver(respond(200)), receiver(respond(200))]);
    const type = `tenant.${randomBytes(4).toString('hex')}`;
    const mk = async (url: string, tenantId?: string) => {
      const res = await api<{ id: string; tenantId: string | null }>('POST', '/v1/endpoints', {
        url,
        eventTypes: [type],
        retrySchedule: ['0s'],
        ...(tenantId ? { tenantId } : {}),
      });
      expect(res.status).toBe(201);
      expect(res.body.tenantId).toBe(tenantId ?? null);
      return res.body.id;
    };
    const epA = await mk(a.url, 'tenant-a');
    await mk(b.url, 'tenant-b');
    const epOps = await mk(ops.url);
    const send = (tenantId?: string, idempotencyKey?: string) =>
      api<{ eventId: string; deliveries: { id: string; endpointId: string }[] }>('POST', '/v1/events', {
        type,
        payload: { tenantId },
        ...(tenantId ? { tenantId } : {}),
        ...(idempotencyKey ? { idempotencyKey } : {}),
      });
    const forA = await send('tenant-a', 'same-key');
    expect(forA.body.deliveries.map((d) => d.endpointId).sort()).toEqual([epA, epOps].sort());
    const untenanted = await send();
    expect(untenanted.body.deliveries.map((d) => d.endpointId)).toEqual([epOps]);
    // The same key from another tenant is another event; from the same tenant, the same one.
    const forB = await send('tenant-b', 'same-key');
    expect(forB.body.eventId).not.toBe(forA.body.eventId);
    expect((await send('tenant-a', 'same-key')).body.eventId).toBe(forA.body.eventId);
    await Promise.all(
      [...forA.body.deliveries, ...untenanted.body.deliveries, ...forB.body.deliveries].map((d) => finished(d.id)),
    );
    expect([a.requests.length, b.requests.length, ops.requests.length]).toEqual([1, 1, 3]);
    const listed = await api<{ items: { id: string }[] }>('GET', '/v1/endpoints?tenantId=tenant-a');
    expect(listed.body.items.map((e) => e.id)).toEqual([epA]);
  });

  it('the same idempotency key returns the same event and starts nothing new', async () => {
    const r = await receiver(respond(200));
    const ep = await endpoint(r.url);
    const key = `idem-${randomBytes(6).toString('hex')}`;
    const first = await api<{ eventId: string; deliveries: { id: string }[] }>('POST', '/v1/events', {
      type: ep.type,
      payload: { n: 1 },
      idempotencyKey: key,
    });
    const second = await api<{ eventId: string; deliveries: { id: string }[] }>('POST', '/v1/events', {
      type: ep.type,
      payload: { n: 1 },
      idempotencyKey: key,
    });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    await finished(first.body.deliveries[0]!.id);
    const third = await api('POST', '/v1/events', { type: ep.type, payload: { n: 1 }, idempotencyKey: key });
    expect(third.body).toEqual(first.body);
    // Give a wrongly started second run time to show up, then count.
    await new Promise((res) => setTimeout(res, 300));
    expect(r.requests).toHaveLength(1);
  });

  it('rotating the secret signs with both for 24 h', async () => {
    const r = await receiver(respond(200));
    const ep = await endpoint(r.url);
    const rotated = await api<{ secret: string; previousSecretExpiresAt: string }>(
      'POST',
      `/v1/endpoints/${ep.id}/rotate-secret`,
    );
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(ep.secret);
    expect(Date.parse(rotated.body.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(23 * 3600 * 1000);
    const event = await publish(ep.type);
    await finished(event.deliveries[0]!.id);
    const req = r.requests[0]!;
    expect(String(req.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verifies(ep.secret, req.headers, req.body)).toBe(true);
    expect(verifies(rotated.body.secret, req.headers, req.body)).toBe(true);
  });
});
