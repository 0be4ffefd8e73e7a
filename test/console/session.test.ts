/**
 * The console's login, session and CSRF rules, and its pages as HTML, on the production app against the real
 * PostgreSQL and Temporal (no browser: test/browser/ drives Chromium). A session acts as its key: pages need
 * `read`, buttons follow the scopes, and a write through the session needs the CSRF header from this origin.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';

describe('console sessions', () => {
  let h: Harness;
  let app: ReturnType<typeof testApp>;
  beforeAll(async () => {
    h = await createHarness({ TEMPORAL_UI_URL: 'http://127.0.0.1:8233' });
    app = testApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  async function makeKey(scopes: string[]) {
    const res = await app.request('/v1/api-keys', {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `console-${scopes.join('-')}-${Date.now()}`, scopes }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string; key: string };
  }

  async function login(key: string) {
    const res = await app.request('/console/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
      body: new URLSearchParams({ key, next: '/console/webhooks' }).toString(),
    });
    return res;
  }

  async function session(key: string) {
    const res = await login(key);
    expect(res.status).toBe(303);
    const setCookie = res.headers.get('set-cookie') ?? '';
    const cookie = /opsflow_session=([^;]+)/.exec(setCookie)![1]!;
    const page = await app.request('/console/webhooks', { headers: { cookie: `opsflow_session=${cookie}` } });
    expect(page.status).toBe(200);
    const csrf = /<meta name="csrf-token" content="([^"]+)"/.exec(await page.text())![1]!;
    return { cookie: `opsflow_session=${cookie}`, csrf, setCookie };
  }

  it('pages without a session send you to the login page, and remember where you were going', async () => {
    const res = await app.request('/console/deploys');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/login?next=%2Fconsole%2Fdeploys');
    const form = await (await app.request('/console/login?next=/console/deploys')).text();
    expect(form).toContain('name="next" value="/console/deploys"');
    // Another site is never a destination.
    const evil = await (await app.request('/console/login?next=https://evil.example/')).text();
    expect(evil).toContain('name="next" value="/console"');
  });

  it('a wrong key is refused with no cookie; a good one gets an HttpOnly, SameSite=Strict session cookie', async () => {
    const bad = await login('opsk_not-a-real-key-at-all');
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
    expect(await bad.text()).toContain('unknown, revoked or expired');

    const s = await session(TEST_API_KEY);
    expect(s.setCookie).toMatch(/HttpOnly/);
    expect(s.setCookie).toMatch(/SameSite=Strict/);
    expect(s.setCookie).toMatch(/Path=\//);
    // Only a digest of the token is stored.
    const token = s.cookie.split('=')[1]!;
    const { rows } = await h.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM opsflow.console_sessions WHERE token_hash = sha256(convert_to($1, $2))',
      [token, 'UTF8'],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('a login posted from another origin is refused', async () => {
    const res = await app.request('/console/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      body: new URLSearchParams({ key: TEST_API_KEY }).toString(),
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('every page renders for an admin session, with Temporal UI links and its CSRF token', async () => {
    const s = await session(TEST_API_KEY);
    for (const p of [
      '/console',
      '/console/webhooks',
      '/console/webhooks?range=7d',
      '/console/subscriptions',
      '/console/backups',
      '/console/deploys',
      '/console/schedules',
    ]) {
      const res = await app.request(p, { headers: { cookie: s.cookie } });
      expect(res.status, p).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = await res.text();
      expect(body).toContain(`content="${s.csrf}"`);
      expect(body).toContain('/console/assets/uPlot.iife.min.js');
    }
    const schedules = await (await app.request('/console/schedules', { headers: { cookie: s.cookie } })).text();
    expect(schedules).toContain('href="http://127.0.0.1:8233/namespaces/default/schedules/');
    expect(schedules).toContain('data-api="/v1/schedules/');
  });

  it('serves its assets itself (offline), and nothing else from that path', async () => {
    const js = await app.request('/console/assets/uPlot.iife.min.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await js.text()).length).toBeGreaterThan(20_000);
    expect((await app.request('/console/assets/console.js')).status).toBe(200);
    expect((await app.request('/console/assets/..%2F..%2Fpackage.json')).status).toBe(404);
  });

  it('a write through the session needs the CSRF header, from this origin', async () => {
    const s = await session(TEST_API_KEY);
    const post = (headers: Record<string, string>) =>
      app.request('/v1/dead-letters/redrive', {
        method: 'POST',
        headers: { cookie: s.cookie, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ endpointId: 'ep_console_none', limit: 1 }),
      });
    const none = await post({});
    expect(none.status).toBe(403);
    expect(((await none.json()) as { error: { message: string } }).error.message).toMatch(/X-CSRF-Token/);
    expect((await post({ 'x-csrf-token': 'wrong' })).status).toBe(403);
    expect((await post({ 'x-csrf-token': s.csrf, origin: 'https://evil.example' })).status).toBe(403);
    const ok = await post({ 'x-csrf-token': s.csrf, origin: 'http://localhost' });
    expect(ok.status, await ok.clone().text()).toBe(200);
    expect(await ok.json()).toEqual({ redriven: 0, failed: 0 });
    // Reads need no header.
    expect((await app.request('/v1/dead-letters', { headers: { cookie: s.cookie } })).status).toBe(200);
  });

  it('follows the key: a read-only key sees disabled buttons and is refused writes; no read, no pages', async () => {
    const reader = await makeKey(['read']);
    const s = await session(reader.key);
    const page = await (await app.request('/console/schedules', { headers: { cookie: s.cookie } })).text();
    expect(page).toContain('disabled title="Your key lacks the scope schedules:write"');
    expect(page).not.toContain('data-api="/v1/schedules/');
    const write = await app.request('/v1/schedules/nope/trigger', {
      method: 'POST',
      headers: { cookie: s.cookie, 'x-csrf-token': s.csrf },
    });
    expect(write.status).toBe(403);
    expect(((await write.json()) as { error: { details: unknown } }).error.details).toEqual({
      requiredScope: 'schedules:write',
    });

    const publisher = await makeKey(['events:publish']);
    const p = await session(publisher.key).catch(() => undefined);
    expect(p).toBeUndefined(); // the landing page (webhooks) answers 403, not 200
    const res = await login(publisher.key);
    const cookie = /opsflow_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!;
    const denied = await app.request('/console', { headers: { cookie: `opsflow_session=${cookie}` } });
    expect(denied.status).toBe(403);
    expect(await denied.text()).toContain('lacks the scope <code>read</code>');
  });

  it('logging out (with the CSRF token) ends the session everywhere; revoking the key ends its sessions', async () => {
    const s = await session(TEST_API_KEY);
    const noToken = await app.request('/console/logout', {
      method: 'POST',
      headers: { cookie: s.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    expect(noToken.status).toBe(403);
    const out = await app.request('/console/logout', {
      method: 'POST',
      headers: { cookie: s.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: s.csrf }).toString(),
    });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/opsflow_session=;/);
    expect((await app.request('/console', { headers: { cookie: s.cookie } })).status).toBe(303);
    expect((await app.request('/v1/status', { headers: { cookie: s.cookie } })).status).toBe(401);

    const made = await makeKey(['read']);
    const r = await session(made.key);
    const revoked = await app.request(`/v1/api-keys/${made.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TEST_API_KEY}` },
    });
    expect(revoked.status).toBe(200);
    expect((await app.request('/console/webhooks', { headers: { cookie: r.cookie } })).status).toBe(303);
    expect((await app.request('/v1/dead-letters', { headers: { cookie: r.cookie } })).status).toBe(401);
  });

  it('an expired session is refused, and expired rows are removed at the next login', async () => {
    const s = await session(TEST_API_KEY);
    await h.pool.query("UPDATE opsflow.console_sessions SET expires_at = now() - interval '1 second'");
    expect((await app.request('/console', { headers: { cookie: s.cookie } })).status).toBe(303);
    await session(TEST_API_KEY);
    const { rows } = await h.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM opsflow.console_sessions WHERE expires_at < now()',
    );
    expect(rows[0]!.n).toBe(0);
  });
});
