/**
 * Trust: a `read` key cannot hold the API open with system checks. One API process waits on at most
 * SYSTEM_CHECKS_IN_FLIGHT (4) runs at once — the next is 429 with Retry-After, until one has answered — and a
 * timeout longer than HEALTH_CHECK_TIMEOUT_MS needs schedules:write. Real API (app.request), a real worker, a real
 * slow health URL on loopback, real PostgreSQL and Temporal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CHECKS_IN_FLIGHT } from '../../api/routes/status/system-check.js';
import { apiCaller } from '../helpers/api.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { startReceiver, type Receiver } from '../helpers/http.js';

describe('security: system-check limits', () => {
  let h: Harness;
  let workers: TestWorkers;
  let slow: Receiver;
  let reader: ReturnType<typeof apiCaller>;

  beforeAll(async () => {
    // Answers after 1.2 s: each check holds its request about that long.
    slow = await startReceiver(async (_req, res) => {
      await new Promise((r) => setTimeout(r, 1200));
      res.writeHead(200).end('ok');
    });
    h = await createHarness({ HEALTH_CHECK_URLS: `${slow.url}/health`, HEALTH_CHECK_TIMEOUT_MS: '3000' });
    workers = await startWorkers(h, ['system']);
    const app = testApp(h);
    const made = await apiCaller(app)<{ key: string }>('POST', '/v1/api-keys', { name: 'reader', scopes: ['read'] });
    reader = apiCaller(app, made.body.key);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await slow?.close();
  });

  it('one API process waits on at most 4 checks at once; the next is 429 with Retry-After until one answers', async () => {
    expect(SYSTEM_CHECKS_IN_FLIGHT).toBe(4);
    const running = Array.from({ length: 4 }, () => reader<{ status: string }>('GET', '/v1/system-check'));
    await new Promise((r) => setTimeout(r, 300));
    const refused = await reader<{ error: { code: string; details: unknown } }>('GET', '/v1/system-check');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'rate_limited', details: { retryAfterSeconds: 5 } });
    const answers = await Promise.all(running);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(answers.map((a) => a.body.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    // Once they answered, checks run again.
    expect((await reader('GET', '/v1/system-check')).status).toBe(200);
  });

  it('a timeout longer than HEALTH_CHECK_TIMEOUT_MS needs schedules:write; up to it, read is enough', async () => {
    const longer = await reader<{ error: { message: string } }>('POST', '/v1/system-check', { timeoutMs: 60_000 });
    expect(longer.status).toBe(403);
    expect(longer.body.error.message).toContain('schedules:write');
    expect((await reader('POST', '/v1/system-check', { timeoutMs: 3000 })).status).toBe(200);
    // The operator's key may.
    expect((await apiCaller(testApp(h))('POST', '/v1/system-check', { timeoutMs: 4000 })).status).toBe(200);
  });
});
