import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envKeyId } from '../lib/keys/store.js';
import { createPool, isPostgresUnavailable } from '../lib/db.js';
import { createHarness, testApp, TEST_API_KEY, type Harness } from './helpers/harness.js';
import { bearer } from './helpers/api.js';

describe('API skeleton', () => {
  let h: Harness;
  let app: ReturnType<typeof testApp>;
  const auth = bearer();

  beforeAll(async () => {
    h = await createHarness({ API_BODY_LIMIT_BYTES: '2048' });
    app = testApp(h);
  });
  afterAll(() => h.close());

  describe('happy', () => {
    it('GET /health answers without a key', async () => {
      const res = await app.request('/health');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
    });

    it('GET /ready is 200 when Temporal and PostgreSQL answer', async () => {
      const res = await app.request('/ready');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', temporal: 'ok' } });
    });

    it('every response carries a request id', async () => {
      const res = await app.request('/health');
      expect(res.headers.get('x-request-id')).toMatch(/^[\w-]{8,}$/);
    });
  });

  describe('errors', () => {
    it('unknown routes get the envelope with 404', async () => {
      const res = await app.request('/v1/does-not-exist', { headers: auth });
      expect(res.status).toBe(404);
      const body = (await res.json()) as { error: { code: string; message: string; requestId: string } };
      expect(body.error.code).toBe('not_found');
      expect(body.error.requestId).toBe(res.headers.get('x-request-id'));
    });

    it('unknown routes outside /v1 too', async () => {
      const res = await app.request('/nothing-here');
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
    });

    it('malformed JSON is a 400 with code malformed_json', async () => {
      const res = await app.request('/v1/system-check', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: '{"httpUrls": [',
      });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; requestId: string } };
      expect(body.error.code).toBe('malformed_json');
      expect(body.error.requestId).toBeTruthy();
    });

    it('a body that fails validation is a 400 naming the field', async () => {
      const res = await app.request('/v1/system-check', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ httpUrls: ['not a url'], timeoutMs: 5 }),
      });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; details: { path: string }[] } };
      expect(body.error.code).toBe('validation_failed');
      expect(body.error.details.map((d) => d.path).sort()).toEqual(['httpUrls.0', 'timeoutMs']);
    });

    it('the message names the first problem for people; details keep them all', async () => {
      const send = async (path: string, payload: unknown) => {
        const res = await app.request(path, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify(payload),
        });
        expect(res.status).toBe(400);
        return ((await res.json()) as { error: { message: string; details: unknown[] } }).error;
      };
      const unknown = await send('/v1/events', { type: 'a.b', payload: {}, ordering: 'fifo' });
      expect(unknown.message).toBe('Invalid body: unknown field "ordering"');
      const wrongType = await send('/v1/endpoints', { url: 'https://x.example/h', retrySchedule: '1m' });
      expect(wrongType.message).toBe('Invalid body: retrySchedule: expected an array, got string');
      const several = await send('/v1/system-check', { httpUrls: ['not a url'], timeoutMs: 5 });
      expect(several.message).toMatch(/^Invalid body: httpUrls\.0: .+ \(and 1 more: see details\)$/);
      expect(several.details).toHaveLength(2);
      const query = await app.request('/v1/deliveries?limit=0', { headers: auth });
      expect(((await query.json()) as { error: { message: string } }).error.message).toMatch(/^Invalid query: limit: /);
    });

    it('a body over the limit is a 413', async () => {
      const res = await app.request('/v1/system-check', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ httpUrls: ['http://x.example/' + 'a'.repeat(4000)] }),
      });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
    });

    it('GET /ready is 503 naming PostgreSQL when it does not answer', async () => {
      const deadPool = createPool('postgres://postgres@127.0.0.1:1/opsflow', 1);
      const broken = testApp(h, { pool: deadPool });
      const res = await broken.request('/ready');
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; details: Record<string, string> } };
      expect(body.error.code).toBe('unavailable');
      expect(body.error.details.temporal).toBe('ok');
      expect(body.error.details.postgres).not.toBe('ok');
      await deadPool.end();
    });

    it('a request that needs PostgreSQL while it is unreachable is 503 unavailable with Retry-After, not 500', async () => {
      const deadPool = createPool('postgres://postgres@127.0.0.1:1/opsflow', 1);
      const broken = testApp(h, { pool: deadPool });
      for (const [method, path, body] of [
        ['GET', '/v1/deliveries', undefined],
        ['POST', '/v1/events', { type: 'pg.down', payload: {} }],
      ] as const) {
        const res = await broken.request(path, {
          method,
          headers: { ...auth, 'content-type': 'application/json' },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        expect(res.status, `${method} ${path}`).toBe(503);
        expect(res.headers.get('retry-after')).toBe('5');
        const err = (await res.json()) as { error: { code: string; message: string } };
        expect(err.error).toMatchObject({
          code: 'unavailable',
          message: expect.stringMatching(/PostgreSQL/) as string,
        });
      }
      await deadPool.end();
      // A wrong statement is still a 500: only unavailability is "try again".
      expect(isPostgresUnavailable(Object.assign(new Error('syntax error'), { code: '42601' }))).toBe(false);
      expect(isPostgresUnavailable(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe(true);
    });

    it('a Temporal call cancelled before its answer is 503 unavailable with Retry-After, not 500', async () => {
      // A real cancelled call: a long poll on the dev server, cancelled by its caller.
      const abort = new AbortController();
      const { connection } = h.client;
      const poll = connection.withDeadline(Date.now() + 30_000, () =>
        connection.withAbortSignal(abort.signal, () =>
          connection.workflowService.pollWorkflowTaskQueue({
            namespace: h.config.temporal.namespace,
            taskQueue: { name: `cancelled-${Date.now()}` },
            identity: 'api-test',
          }),
        ),
      );
      setTimeout(() => abort.abort(), 200);
      const cancelled = (await poll.then(
        () => new Error('the poll was answered'),
        (err: unknown) => err,
      )) as Error & { code?: number };
      expect(cancelled.code, cancelled.message).toBe(1);
      const withCancelled = testApp(h);
      withCancelled.get('/v1/__cancelled', () => {
        throw cancelled;
      });
      const res = await withCancelled.request('/v1/__cancelled', { headers: auth });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({
        code: 'unavailable',
        message: expect.stringMatching(/^Temporal did not answer in time/) as string,
      });
      // Any other error is still a 500.
      const failing = testApp(h);
      failing.get('/v1/__failing', () => {
        throw Object.assign(new Error('invalid argument'), { code: 3 });
      });
      expect((await failing.request('/v1/__failing', { headers: auth })).status).toBe(500);
    });

    it('GET /ready is 503 naming Temporal when it does not answer', async () => {
      const connection = Connection.lazy({ address: '127.0.0.1:1', connectTimeout: 500 });
      const deadClient = new Client({ connection });
      const broken = testApp(h, { temporal: deadClient });
      const res = await broken.request('/ready');
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { details: Record<string, string> } };
      expect(body.error.details.postgres).toBe('ok');
      expect(body.error.details.temporal).not.toBe('ok');
    });
  });

  describe('security', () => {
    it('no key: 401 with the envelope', async () => {
      const res = await app.request('/v1/system-check');
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    });

    it('wrong key: 401', async () => {
      for (const header of [`Bearer ${TEST_API_KEY}x`, 'Bearer nope', `Basic ${TEST_API_KEY}`, TEST_API_KEY]) {
        const res = await app.request('/v1/does-not-exist', { headers: { authorization: header } });
        expect(res.status, header).toBe(401);
      }
    });

    it('right key: through to the route (404 here, not 401)', async () => {
      const res = await app.request('/v1/does-not-exist', { headers: auth });
      expect(res.status).toBe(404);
    });

    it('any of several configured keys works', async () => {
      const other = 'second-key-abcdefghijkl-0123456789';
      const multi = testApp(h, { apiKeys: [TEST_API_KEY, other] });
      expect((await multi.request('/v1/x', { headers: { authorization: `Bearer ${other}` } })).status).toBe(404);
      expect(
        (await multi.request('/v1/x', { headers: { authorization: 'Bearer third-key-abcdefghijkl' } })).status,
      ).toBe(401);
    });

    it('request logs carry the request id and the key id, never the key', async () => {
      const lines: Record<string, unknown>[] = [];
      const raw: string[] = [];
      const log = pino(
        { level: 'info' },
        {
          write(line: string) {
            raw.push(line);
            lines.push(JSON.parse(line) as Record<string, unknown>);
          },
        },
      );
      const logged = testApp(h, { log });
      const ok = await logged.request('/v1/x', { headers: auth });
      const denied = await logged.request('/v1/x', { headers: { authorization: 'Bearer wrong-key-abcdefghijkl' } });
      const requests = lines.filter((l) => l.msg === 'request');
      expect(requests).toEqual([
        expect.objectContaining({
          requestId: ok.headers.get('x-request-id'),
          keyId: envKeyId(TEST_API_KEY),
          status: 404,
        }),
        expect.objectContaining({ requestId: denied.headers.get('x-request-id'), status: 401 }),
      ]);
      expect(requests[1]!.keyId).toBeUndefined();
      expect(raw.join('')).not.toContain(TEST_API_KEY);
      expect(raw.join('')).not.toContain('wrong-key-abcdefghijkl');
    });

    it('auth is checked before the body is parsed', async () => {
      const res = await app.request('/v1/system-check', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{bad json',
      });
      expect(res.status).toBe(401);
    });
  });
});
