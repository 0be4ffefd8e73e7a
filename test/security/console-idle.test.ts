/**
 * Trust: a console session left alone ends (CONSOLE_IDLE_TIMEOUT), even within its lifetime; using it keeps it
 * alive. Real API (app.request), real PostgreSQL (the sessions table), real Temporal (the harness).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';

describe('security: console idle timeout', () => {
  let h: Harness;
  let app: ReturnType<typeof testApp>;
  beforeAll(async () => {
    h = await createHarness();
    app = testApp(h, { config: { ...h.config, consoleIdleTimeoutMs: 3000 } });
  });
  afterAll(async () => {
    await h?.close();
  });

  async function login(): Promise<string> {
    const res = await app.request('/console/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
      body: new URLSearchParams({ key: TEST_API_KEY, next: '/console' }).toString(),
    });
    expect(res.status).toBe(303);
    return `opsflow_session=${/opsflow_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]}`;
  }
  const page = async (cookie: string) => (await app.request('/console/schedules', { headers: { cookie } })).status;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  // A cheap request with the session (no Temporal call behind it): what keeps the session in use is the time
  // between its requests, which a busy machine must not stretch past the timeout.
  const use = async (cookie: string) => (await app.request('/v1/deploy-targets', { headers: { cookie } })).status;

  it('a session used every 300 ms stays; one left for longer than the idle timeout ends', async () => {
    const busy = await login();
    const idle = await login();
    const loggedIn = Date.now();
    while (Date.now() - loggedIn < 3600) {
      expect(await use(busy)).toBe(200);
      await sleep(300);
    }
    // Over 3.6 s after its login, well inside its 12 h lifetime, the unused one is over; the used one is not.
    expect(await page(idle)).toBe(303);
    expect(await page(busy)).toBe(200);
    // Its API calls are refused too.
    const api = await app.request('/v1/deploy-targets', { headers: { cookie: idle } });
    expect(api.status).toBe(401);
  });
});
