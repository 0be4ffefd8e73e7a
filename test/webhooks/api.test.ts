/**
 * Webhook API contract without a worker: validation, SSRF at creation, CRUD, pagination, and that bad
 * input stores nothing.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';

describe('webhook API', () => {
  let h: Harness;
  let app: ReturnType<typeof testApp>;
  const headers = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };

  async function call<T = { error: { code: string; message: string; details?: { path: string }[] } }>(
    method: string,
    path: string,
    body?: unknown,
  ) {
    const res = await app.request(path, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as T };
  }

  async function count(table: string): Promise<number> {
    const { rows } = await h.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM opsflow.${table}`);
    return rows[0]!.n;
  }

  beforeAll(async () => {
    // No allow-list: loopback receivers are refused here, as in production.
    h = await createHarness({ WEBHOOK_MAX_PAYLOAD_BYTES: '262144' });
    app = testApp(h);
  });
  afterAll(async () => {
    // These endpoints point at a public address: make sure no later test's worker ever delivers to them.
    await h.pool.query(
      "UPDATE opsflow.webhook_endpoints SET enabled = false, deleted_at = now() WHERE url LIKE 'https://93.184.216.34/%'",
    );
    await h.close();
  });

  describe('endpoints', () => {
    it('creates with defaults and a generated secret, reads, lists, patches, deletes', async () => {
      const created = await call<{
        id: string;
        secret: string;
        retrySchedule: string[];
        timeoutMs: number;
        eventTypes: null;
      }>('POST', '/v1/endpoints', { url: 'https://93.184.216.34/hooks', description: 'public IP' });
      expect(created.status).toBe(201);
      expect(created.body.id).toMatch(/^ep_/);
      expect(created.body.secret).toMatch(/^whsec_/);
      expect(created.body.retrySchedule).toEqual(['0s', '1m', '5m', '15m', '1h']);
      expect(created.body.timeoutMs).toBe(15000);
      expect(created.body.eventTypes).toBeNull();
      const id = created.body.id;

      const read = await call<Record<string, unknown>>('GET', `/v1/endpoints/${id}`);
      expect(read.status).toBe(200);
      expect(read.body).not.toHaveProperty('secret');

      const patched = await call<{ eventTypes: string[]; timeoutMs: number; description: string | null }>(
        'PATCH',
        `/v1/endpoints/${id}`,
        { eventTypes: ['a.b'], timeoutMs: 5000, description: null },
      );
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ eventTypes: ['a.b'], timeoutMs: 5000, description: null });

      expect((await call('DELETE', `/v1/endpoints/${id}`)).status).toBe(204);
      expect((await call('GET', `/v1/endpoints/${id}`)).status).toBe(404);
      expect((await call('DELETE', `/v1/endpoints/${id}`)).status).toBe(404);
      expect((await call('PATCH', `/v1/endpoints/${id}`, { timeoutMs: 2000 })).status).toBe(404);
      expect((await call('POST', `/v1/endpoints/${id}/rotate-secret`)).status).toBe(404);
    });

    it('accepts a given whsec_ secret and a custom schedule', async () => {
      const secret = `whsec_${randomBytes(32).toString('base64')}`;
      const res = await call<{ secret: string; retrySchedule: string[] }>('POST', '/v1/endpoints', {
        url: 'https://93.184.216.34/x',
        eventTypes: ['api.test.only'],
        secret,
        retrySchedule: ['0s', '30s', '2h'],
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ secret, retrySchedule: ['0s', '30s', '2h'] });
    });

    it('paginates with a stable cursor', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await call<{ id: string }>('POST', '/v1/endpoints', {
          url: `https://93.184.216.34/p${i}`,
          eventTypes: ['api.test.only'],
        });
        ids.push(res.body.id);
      }
      const seen: string[] = [];
      const arrived: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { status: number; body: { items: { id: string }[]; nextCursor: string | null } } = await call(
          'GET',
          `/v1/endpoints?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(res.status).toBe(200);
        expect(res.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.items.map((e) => e.id));
        cursor = res.body.nextCursor;
        // New rows arrive between pages: nothing already there is lost or shown twice.
        const more = await call<{ id: string }>('POST', '/v1/endpoints', {
          url: 'https://93.184.216.34/late',
          eventTypes: ['api.test.only'],
        });
        arrived.push(more.body.id);
      } while (cursor);
      expect(new Set(seen).size).toBe(seen.length);
      for (const id of ids) expect(seen.filter((s) => s === id)).toEqual([id]);
      // Newest first: what arrived after the first page sorts before the cursor, so later pages skip it.
      for (const id of arrived) expect(seen).not.toContain(id);
      expect((await call('GET', '/v1/endpoints?cursor=garbage')).status).toBe(400);
      expect((await call('GET', '/v1/endpoints?limit=500')).status).toBe(400);
    });

    it.each([
      ['missing url', {}, 'url'],
      ['bad secret', { url: 'https://93.184.216.34/', secret: 'hunter2' }, 'secret'],
      ['bad schedule', { url: 'https://93.184.216.34/', retrySchedule: ['0s', 'soon'] }, 'retrySchedule.1'],
      ['timeout too small', { url: 'https://93.184.216.34/', timeoutMs: 10 }, 'timeoutMs'],
      ['bad event type', { url: 'https://93.184.216.34/', eventTypes: ['has space'] }, 'eventTypes.0'],
      ['unknown field', { url: 'https://93.184.216.34/', colour: 'red' }, ''],
    ])('rejects %s with 400 and stores nothing', async (_name, body, path) => {
      const before = await count('webhook_endpoints');
      const res = await call('POST', '/v1/endpoints', body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.details?.map((d) => d.path)).toContain(path);
      expect(await count('webhook_endpoints')).toBe(before);
    });

    it.each([
      'http://127.0.0.1:8080/',
      'http://2130706433/',
      'http://0177.0.0.1/',
      'http://0x7f.1/',
      'http://[::ffff:127.0.0.1]/',
      'http://0.0.0.0/',
      'http://localhost/',
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.5/',
      'ftp://93.184.216.34/',
      'no-scheme.example.com',
    ])('refuses %s with 422 and stores nothing', async (url) => {
      const before = await count('webhook_endpoints');
      const res = await call('POST', '/v1/endpoints', { url });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('unprocessable');
      expect(res.body.error.message).toMatch(/URL refused/);
      expect(await count('webhook_endpoints')).toBe(before);
    });

    it('refuses a private URL on PATCH too', async () => {
      const { body } = await call<{ id: string }>('POST', '/v1/endpoints', {
        url: 'https://93.184.216.34/',
        eventTypes: ['api.test.only'],
      });
      const res = await call('PATCH', `/v1/endpoints/${body.id}`, { url: 'http://192.168.0.1/' });
      expect(res.status).toBe(422);
      const read = await call<{ url: string }>('GET', `/v1/endpoints/${body.id}`);
      expect(read.body.url).toBe('https://93.184.216.34/');
    });
  });

  describe('events', () => {
    it.each([
      ['missing type', { payload: {} }],
      ['missing payload', { type: 'a.b' }],
      ['bad type', { type: 'no spaces allowed', payload: {} }],
      ['unknown field', { type: 'a.b', payload: {}, extra: 1 }],
    ])('rejects %s with 400 and stores nothing', async (_name, body) => {
      const before = await count('webhook_events');
      const res = await call('POST', '/v1/events', body);
      expect(res.status).toBe(400);
      expect(await count('webhook_events')).toBe(before);
    });

    it('rejects non-JSON with 400 malformed_json', async () => {
      const res = await call('POST', '/v1/events', '{"type": "a.b", "payload": ');
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('malformed_json');
    });

    it('rejects a payload over 256 KiB with 413 and stores nothing', async () => {
      const before = await count('webhook_events');
      const res = await call('POST', '/v1/events', { type: 'big.one', payload: { blob: 'x'.repeat(300 * 1024) } });
      expect(res.status).toBe(413);
      expect(res.body.error.code).toBe('payload_too_large');
      expect(await count('webhook_events')).toBe(before);
    });

    it('an event nobody subscribes to is stored with no deliveries', async () => {
      const res = await call<{ eventId: string; deliveries: unknown[] }>('POST', '/v1/events', {
        type: `nobody.${randomBytes(4).toString('hex')}`,
        payload: [1, 2, 3],
      });
      expect(res.status).toBe(202);
      expect(res.body.eventId).toMatch(/^msg_/);
      expect(res.body.deliveries).toEqual([]);
    });
  });

  describe('deliveries and dead letters', () => {
    it('unknown ids are 404', async () => {
      expect((await call('GET', '/v1/deliveries/dlv_nope')).status).toBe(404);
      expect((await call('POST', '/v1/deliveries/dlv_nope/retry')).status).toBe(404);
      expect((await call('POST', '/v1/dead-letters/dl_nope/discard')).status).toBe(404);
    });

    it('validates list filters', async () => {
      expect((await call('GET', '/v1/deliveries?status=lost')).status).toBe(400);
      expect((await call('GET', '/v1/deliveries?since=yesterday')).status).toBe(400);
      expect((await call('GET', '/v1/dead-letters?until=2026-13-01')).status).toBe(400);
      const ok = await call<{ items: unknown[] }>('GET', '/v1/deliveries?status=delivered&since=2026-01-01T00:00:00Z');
      expect(ok.status).toBe(200);
      expect(Array.isArray(ok.body.items)).toBe(true);
    });

    it('redrive with no body redrives the 50 oldest open dead letters', async () => {
      // 51 dead letters of an endpoint of this test (published, then dead-lettered as the worker would).
      const type = `redrive.default.${randomBytes(3).toString('hex')}`;
      const ep = await call<{ id: string }>('POST', '/v1/endpoints', {
        url: 'https://93.184.216.34/dlq',
        eventTypes: [type],
      });
      expect(ep.status).toBe(201);
      for (let n = 0; n < 51; n++)
        expect((await call('POST', '/v1/events', { type, payload: { n } })).status).toBe(202);
      await h.pool.query(
        `WITH d AS (UPDATE opsflow.webhook_deliveries SET status = 'dead_lettered' WHERE endpoint_id = $1
                    RETURNING id, endpoint_id, event_type)
         INSERT INTO opsflow.dead_letters (id, delivery_id, endpoint_id, event_type, reason)
         SELECT 'dl_' || md5(d.id), d.id, d.endpoint_id, d.event_type, 'test' FROM d`,
        [ep.body.id],
      );
      const open = async () =>
        (
          await h.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM opsflow.dead_letters dl JOIN opsflow.webhook_endpoints ep
               ON ep.id = dl.endpoint_id WHERE dl.resolved_at IS NULL AND ep.enabled AND ep.deleted_at IS NULL`,
          )
        ).rows[0]!.n;
      const before = await open();
      expect(before).toBeGreaterThanOrEqual(51);
      const res = await app.request('/v1/dead-letters/redrive', {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_API_KEY}` },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ redriven: 50, failed: 0 });
      expect(await open()).toBe(before - 50);
    });

    it('redrive with since/until redrives only the dead letters created in [since, until) of that endpoint', async () => {
      const type = `redrive.window.${randomBytes(3).toString('hex')}`;
      const ep = await call<{ id: string }>('POST', '/v1/endpoints', {
        url: 'https://93.184.216.34/w',
        eventTypes: [type],
      });
      for (let n = 0; n < 4; n++) expect((await call('POST', '/v1/events', { type, payload: { n } })).status).toBe(202);
      // Four dead letters, 4, 3, 2 and 1 hours old.
      await h.pool.query(
        `WITH d AS (UPDATE opsflow.webhook_deliveries SET status = 'dead_lettered' WHERE endpoint_id = $1
                    RETURNING id, endpoint_id, event_type),
              k AS (SELECT d.*, row_number() OVER (ORDER BY d.id) AS k FROM d)
         INSERT INTO opsflow.dead_letters (id, delivery_id, endpoint_id, event_type, reason, created_at)
         SELECT 'dlw_' || md5(k.id), k.id, k.endpoint_id, k.event_type, 'test', now() - (k.k || ' hours')::interval FROM k`,
        [ep.body.id],
      );
      const ages = async (resolved: boolean) =>
        (
          await h.pool.query<{ h: number }>(
            `SELECT round(extract(epoch FROM now() - created_at) / 3600)::int AS h FROM opsflow.dead_letters
             WHERE endpoint_id = $1 AND (resolved_at IS NOT NULL) = $2 ORDER BY 1`,
            [ep.body.id, resolved],
          )
        ).rows.map((r) => r.h);
      const hoursAgo = (n: number) => new Date(Date.now() - n * 3600_000 + 60_000).toISOString();
      // [3.5 h ago − 1 min … 1.5 h ago − 1 min): the 3 h and 2 h old ones, not 4 h (before), not 1 h (at or after until).
      const res = await call<{ redriven: number }>('POST', '/v1/dead-letters/redrive', {
        endpointId: ep.body.id,
        since: hoursAgo(3.5),
        until: hoursAgo(1.5),
      });
      expect(res.body).toEqual({ redriven: 2, failed: 0 });
      expect(await ages(true)).toEqual([2, 3]);
      expect(await ages(false)).toEqual([1, 4]);
      // A reversed window redrives nothing (and is not an error: an empty window).
      expect(
        (
          await call('POST', '/v1/dead-letters/redrive', {
            endpointId: ep.body.id,
            since: hoursAgo(1),
            until: hoursAgo(5),
          })
        ).body,
      ).toEqual({ redriven: 0, failed: 0 });
    });

    it('all webhook routes need the API key', async () => {
      for (const [method, path] of [
        ['GET', '/v1/endpoints'],
        ['POST', '/v1/events'],
        ['GET', '/v1/deliveries'],
        ['POST', '/v1/dead-letters/redrive'],
      ] as const) {
        const res = await app.request(path, { method });
        expect(res.status, `${method} ${path}`).toBe(401);
      }
    });
  });
});
