/**
 * Trust: failed console logins are logged (the client address and the count, never the key) and limited — an
 * address with LOGIN_FAILURES_PER_MINUTE failures in a minute is refused with 429 and Retry-After, even with a
 * good key, until the minute has passed. Real app over app.request (one client address), real PostgreSQL; the
 * log is the app's own pino logger, written to memory.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN_FAILURES_PER_MINUTE } from '../../api/console/index.js';
import { createLogger } from '../../lib/logger.js';
import { createHarness, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';

describe('security: console logins', () => {
  let h: Harness;
  const lines: Array<Record<string, unknown>> = [];
  let app: ReturnType<typeof testApp>;
  beforeAll(async () => {
    h = await createHarness();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n').filter(Boolean))
          lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    app = testApp(h, { log: createLogger('info', {}, { destination: sink }) });
  });
  afterAll(async () => {
    await h?.close();
  });
  const login = (key: string) =>
    app.request('/console/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
      body: new URLSearchParams({ key, next: '/console' }).toString(),
    });

  it('each failed login is logged with the address and the count, never the key', async () => {
    const guess = 'opsk_guessed-key-number-one-0123456789';
    expect((await login(guess)).status).toBe(401);
    const failed = lines.filter((l) => String(l.msg).startsWith('console login failed'));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ address: expect.any(String) as string, failures: 1 });
    expect(JSON.stringify(lines)).not.toContain(guess);
  });

  it(`after ${LOGIN_FAILURES_PER_MINUTE} failures in a minute the address is refused with 429, even with a good key`, async () => {
    for (let i = 2; i <= LOGIN_FAILURES_PER_MINUTE; i++)
      expect((await login(`opsk_guess-${i}-0123456789abc`)).status).toBe(401);
    const refused = await login(TEST_API_KEY);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('set-cookie')).toBeNull();
    expect(await refused.text()).toContain('Too many failed logins');
    expect(lines.some((l) => String(l.msg).startsWith('console login refused: too many failed logins'))).toBe(true);
  });
});
