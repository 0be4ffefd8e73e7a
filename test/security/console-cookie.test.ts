/**
 * Trust: over https the console's session cookie is `__Host-opsflow_session` (Secure, Path=/, no Domain: no
 * sibling subdomain can plant or shadow it), and over https only that name is read — a planted
 * `opsflow_session` cookie is ignored. Over plain http (a laptop) the name has no prefix, which browsers would
 * refuse there. Real app over app.request (an https URL, as behind TLS), real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';

describe('security: the console session cookie', () => {
  let h: Harness;
  let app: ReturnType<typeof testApp>;
  beforeAll(async () => {
    h = await createHarness();
    app = testApp(h);
  });
  afterAll(async () => {
    await h?.close();
  });
  const base = (https: boolean) => (https ? 'https://ops.example' : 'http://localhost');
  const login = (https: boolean) =>
    app.request(`${base(https)}/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base(https) },
      body: new URLSearchParams({ key: TEST_API_KEY, next: '/console' }).toString(),
    });
  const page = (cookie: string, https: boolean) =>
    app.request(`${base(https)}/console/webhooks`, { headers: { cookie } });

  it('over https the session is a __Host- cookie: Secure, Path=/, no Domain', async () => {
    const res = await login(true);
    expect(res.status).toBe(303);
    const set = res.headers.get('set-cookie') ?? '';
    expect(set).toMatch(/^__Host-opsflow_session=/);
    expect(set).toMatch(/; Secure/);
    expect(set).toMatch(/; Path=\//);
    expect(set).not.toMatch(/Domain=/i);
    const token = /^__Host-opsflow_session=([^;]+)/.exec(set)![1]!;
    expect((await page(`__Host-opsflow_session=${token}`, true)).status).toBe(200);
    // The unprefixed name — what a sibling subdomain could set — is not read over https.
    const planted = await page(`opsflow_session=${token}`, true);
    expect(planted.status).toBe(303);
    expect(planted.headers.get('location')).toMatch(/^\/console\/login/);
  });

  it('over plain http the cookie keeps its unprefixed name (browsers refuse __Host- without TLS)', async () => {
    const set = (await login(false)).headers.get('set-cookie') ?? '';
    expect(set).toMatch(/^opsflow_session=/);
    expect(set).not.toMatch(/; Secure/);
  });
});
