/**
 * The webhook transport policy end to end (WEBHOOK_HTTPS_ONLY, WEBHOOK_ALLOWED_PORTS): refused at create and
 * update with a 422 naming the setting, and at send time for an endpoint stored before the policy changed
 * (dead-lettered as a permanent failure, nothing sent). Real Temporal, PostgreSQL and HTTP receivers.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretBox } from '../../lib/secret-box.js';
import { deliveryWorkflowId } from '../../lib/webhooks/contract.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { apiCaller } from '../helpers/api.js';
import { respond, startReceiver, type Receiver } from '../helpers/http.js';

describe('webhook transport policy', () => {
  let h: Harness;
  let workers: TestWorkers;
  let app: ReturnType<typeof testApp>;
  let receiver: Receiver;

  const api = apiCaller(() => app);
  type Failure = { error: { code: string; message: string; details?: { path: string; message: string }[] } };

  beforeAll(async () => {
    h = await createHarness({
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      WEBHOOK_HTTPS_ONLY: 'true',
      WEBHOOK_ALLOWED_PORTS: '443,8443',
    });
    workers = await startWorkers(h, ['webhooks']);
    app = testApp(h);
    receiver = await startReceiver(respond(200));
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await receiver?.close();
  });

  it('create and update refuse http: and other ports with 422; an https URL on an allowed port is taken', async () => {
    // Other files' endpoints stay in this database: only rows made from here on count.
    const since = (await h.pool.query<{ t: Date }>('SELECT now() AS t')).rows[0]!.t;
    const http = await api<Failure>('POST', '/v1/endpoints', { url: 'http://127.0.0.1:8443/hook' });
    expect(http.status).toBe(422);
    expect(http.body.error).toMatchObject({ code: 'unprocessable' });
    expect(http.body.error.message).toMatch(/only https URLs are allowed \(WEBHOOK_HTTPS_ONLY\)/);
    expect(http.body.error.details?.map((d) => d.path)).toEqual(['url']);
    expect(http.body.error.details?.[0]?.message).toMatch(/only https/);

    const port = await api<Failure>('POST', '/v1/endpoints', { url: 'https://127.0.0.1:9443/hook' });
    expect(port.status).toBe(422);
    expect(port.body.error.message).toMatch(/port 9443 is not allowed \(WEBHOOK_ALLOWED_PORTS: 443, 8443\)/);

    const ok = await api<{ id: string; url: string }>('POST', '/v1/endpoints', {
      url: 'https://127.0.0.1:8443/hook',
      eventTypes: ['transport.create'],
    });
    expect(ok.status).toBe(201);
    const patched = await api<Failure>('PATCH', `/v1/endpoints/${ok.body.id}`, { url: 'http://127.0.0.1:8443/hook' });
    expect(patched.status).toBe(422);
    expect(patched.body.error.message).toMatch(/only https/);
    expect((await api<{ url: string }>('GET', `/v1/endpoints/${ok.body.id}`)).body.url).toBe(
      'https://127.0.0.1:8443/hook',
    );
    // Nothing half-written: one endpoint row for the three creates.
    const { rows } = await h.pool.query(
      `SELECT count(*)::int AS n FROM opsflow.webhook_endpoints
        WHERE (url LIKE '%:9443/%' OR url LIKE 'http:%:8443/%') AND created_at >= $1`,
      [since],
    );
    expect(rows[0]).toEqual({ n: 0 });
  });

  it('an endpoint stored before the policy is refused at send time: dead-lettered once, nothing sent', async () => {
    const box = createSecretBox(h.config.encryption);
    const type = `test.${randomBytes(4).toString('hex')}`;
    // Stored directly, as by a deployment that ran without WEBHOOK_HTTPS_ONLY until now.
    for (const [id, url] of [
      [`ep_http_${type}`, receiver.url],
      [`ep_port_${type}`, receiver.url.replace('http:', 'https:')],
    ]) {
      await h.pool.query(
        `INSERT INTO opsflow.webhook_endpoints (id, url, event_types, secret, retry_schedule_ms, timeout_ms)
         VALUES ($1, $2, $3, $4, '{0,100,100}', 1000)`,
        [id, url, [type], box.encrypt(`whsec_${randomBytes(24).toString('base64')}`)],
      );
    }
    const event = await api<{ deliveries: { id: string; endpointId: string }[] }>('POST', '/v1/events', {
      type,
      payload: { n: 1 },
    });
    expect(event.status).toBe(202);
    expect(event.body.deliveries).toHaveLength(2);
    const errors: Record<string, string> = {};
    for (const d of event.body.deliveries) {
      const result: unknown = await h.client.workflow.getHandle(deliveryWorkflowId(d.id)).result();
      expect(result).toMatchObject({ status: 'dead_lettered', attempts: 1 }); // permanent: no retry
      const detail = await api<{ attempts: { error: string }[] }>('GET', `/v1/deliveries/${d.id}`);
      errors[d.endpointId.split('_')[1]!] = detail.body.attempts[0]!.error;
    }
    expect(errors.http).toMatch(/URL refused: only https URLs are allowed/);
    expect(errors.port).toMatch(/URL refused: port \d+ is not allowed/);
    expect(receiver.requests).toHaveLength(0);
  });
});
