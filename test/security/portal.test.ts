/**
 * The tenant portal's link and session, through the real API (app.request) on real PostgreSQL and the shared
 * Temporal dev server: who may make a link, that it opens once and not after it expires, that its session is
 * one tenant's (nothing of another tenant on its pages or through the API, no operator route, no console), that
 * revoking the operator's key closes it, that writes need the session's CSRF token, and the test send — to one
 * endpoint only, refused for a disabled or PagerDuty endpoint. The browser test drives the same pages in Chromium.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiCaller } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, testApp, type Harness } from '../helpers/harness.js';

const db = `opsflow_sec_portal_${process.pid}`;

interface Link {
  url: string;
  tenantId: string;
  keyId: string;
  scopes: string[];
  expiresAt: string;
}

describe('security: the tenant portal', () => {
  let h: Harness;
  const admin = () => apiCaller(() => testApp(h));
  let operatorKey = '';
  let operatorKeyId = '';
  let bEndpoint = '';
  let bDelivery = '';
  let aEndpoint = '';

  /** Opens a link as a browser does: its page (GET), then its button (a same-origin POST); the cookie, if any. */
  const open = async (url: string) => {
    const path = new URL(url).pathname;
    const page = await testApp(h).request(path);
    if (page.status !== 200) return { res: page, cookie: undefined };
    expect(await page.text()).toContain(`action="${path}"`);
    const res = await testApp(h).request(path, { method: 'POST', headers: { origin: 'http://localhost' } });
    const cookie = res.headers.get('set-cookie')?.split(';')[0];
    return { res, cookie };
  };
  const link = async (key: string | undefined, tenant: string, body?: unknown) =>
    apiCaller(() => testApp(h), key)<Link & { error?: { code: string; message: string } }>(
      'POST',
      `/v1/tenants/${tenant}/portal-links`,
      body,
    );
  /** A request carrying a session cookie (and its CSRF token for a write). */
  const asSession = (cookie: string, path: string, init: { method?: string; body?: unknown; csrf?: string } = {}) =>
    testApp(h).request(path, {
      method: init.method ?? 'GET',
      headers: {
        cookie,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(init.csrf ? { 'x-csrf-token': init.csrf } : {}),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
  const csrfOf = (page: string) => /<meta name="csrf-token" content="([^"]+)"/.exec(page)?.[1] ?? '';

  beforeAll(async () => {
    await freshStateDatabase(db);
    h = await createHarness({ DATABASE_URL: databaseUrlOf(db), WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    const api = admin();
    const made = await api<{ key: string; id: string }>('POST', '/v1/api-keys', { name: 'ops', scopes: ['operator'] });
    operatorKey = made.body.key;
    operatorKeyId = made.body.id;
    aEndpoint = (await api<{ id: string }>('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/a', tenantId: 'acme' }))
      .body.id;
    bEndpoint = (
      await api<{ id: string }>('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/b', tenantId: 'globex' })
    ).body.id;
    const ev = await api<{ deliveries: { id: string }[] }>('POST', '/v1/events', {
      type: 'invoice.paid',
      payload: {},
      tenantId: 'globex',
    });
    bDelivery = ev.body.deliveries[0]!.id;
  });
  afterAll(async () => {
    await h?.close();
    await dropDatabase(db);
  });

  it("an operator's key makes a link for a tenant; other keys and bad requests are refused, and nothing is made", async () => {
    const made = await link(operatorKey, 'acme', { expiresInSec: 3600 });
    expect(made.status).toBe(201);
    expect(made.body.url).toMatch(/^http:\/\/localhost\/portal\/open\/[A-Za-z0-9_-]{43}$/);
    expect(made.body.tenantId).toBe('acme');
    expect(made.body.scopes).toEqual(['read', 'endpoints:write', 'deliveries:redrive']);
    expect(Date.parse(made.body.expiresAt) - Date.now()).toBeGreaterThan(3500_000);
    // The portal's key is the tenant's, made by the operator's key.
    const keys = await admin()<{ items: { id: string; tenantId: string; createdByKey: string; expiresAt: string }[] }>(
      'GET',
      '/v1/api-keys',
    );
    const portalKey = keys.body.items.find((k) => k.id === made.body.keyId)!;
    expect(portalKey).toMatchObject({ tenantId: 'acme', createdByKey: operatorKeyId, expiresAt: made.body.expiresAt });

    const count = async () =>
      Number((await h.pool.query<{ n: string }>('SELECT count(*) AS n FROM opsflow.portal_links')).rows[0]!.n);
    const before = await count();
    const publisher = await admin()<{ key: string }>('POST', '/v1/api-keys', { name: 'pub', scopes: ['publisher'] });
    const noRead = await admin()<{ key: string }>('POST', '/v1/api-keys', { name: 'w', scopes: ['endpoints:write'] });
    const tenantKey = await admin()<{ key: string }>('POST', '/v1/api-keys', {
      name: 't',
      scopes: ['admin'],
      tenantId: 'acme',
    });
    const refusals: [string | undefined, unknown, number, RegExp][] = [
      [publisher.body.key, undefined, 403, /lacks the scope endpoints:write/],
      [noRead.body.key, undefined, 403, /needs a key holding read and endpoints:write: this one lacks read/],
      [tenantKey.body.key, undefined, 403, /tenant acme's/],
      [operatorKey, { expiresInSec: 10 }, 400, /expiresInSec/],
      [operatorKey, { expiresInSec: 8 * 86400 }, 400, /expiresInSec/],
      [operatorKey, { scopes: ['admin'] }, 400, /scopes|Unrecognized/i],
    ];
    for (const [key, body, status, message] of refusals) {
      const res = await link(key, 'acme', body);
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(JSON.stringify(res.body.error)).toMatch(message);
    }
    expect(await count()).toBe(before);
    // The link is in the audit log, by the key that made it.
    const audit = await admin()<{ items: { action: string; actor: { keyId: string }; status: number }[] }>(
      'GET',
      '/v1/audit?action=createPortalLink&limit=50',
    );
    expect(audit.body.items.some((r) => r.actor.keyId === operatorKeyId && r.status === 201)).toBe(true);
  });

  it('a link opens once, not after it expires, and an unknown code is not found', async () => {
    const made = await link(operatorKey, 'acme');
    // A GET (a mail scanner, a link preview) does not spend it.
    const path = new URL(made.body.url).pathname;
    for (let i = 0; i < 2; i++) expect((await testApp(h).request(path)).status).toBe(200);
    // Nor does a POST from another site.
    const forged = await testApp(h).request(path, { method: 'POST', headers: { origin: 'https://evil.example' } });
    expect(forged.status).toBe(403);
    expect(forged.headers.get('set-cookie')).toBeNull();
    const first = await open(made.body.url);
    expect(first.res.status).toBe(303);
    expect(first.res.headers.get('location')).toBe('/portal');
    expect(first.cookie).toMatch(/^opsflow_session=/);
    expect(first.res.headers.get('set-cookie')).toMatch(/HttpOnly/i);
    expect(first.res.headers.get('set-cookie')).toMatch(/SameSite=Strict/i);
    const again = await open(made.body.url);
    expect(again.res.status).toBe(410);
    expect(again.cookie).toBeUndefined();
    expect(await again.res.text()).toContain('opened already');

    const late = await link(operatorKey, 'acme', { expiresInSec: 60 });
    await h.pool.query(`UPDATE opsflow.portal_links SET expires_at = now() - interval '1 second' WHERE key_id = $1`, [
      late.body.keyId,
    ]);
    const expired = await open(late.body.url);
    expect(expired.res.status).toBe(410);
    expect(await expired.res.text()).toContain('expired');
    const unknown = await open('http://localhost/portal/open/' + 'x'.repeat(43));
    expect(unknown.res.status).toBe(404);
    expect((await open('http://localhost/portal/open/short')).res.status).toBe(404);
    // No session, no portal: a notice, never a login form.
    const none = await testApp(h).request('/portal');
    expect(none.status).toBe(401);
    expect(await none.text()).not.toContain('<form');
  });

  it("the portal's session is one tenant's: its pages and the API show nothing of another's, and no operator route", async () => {
    const { cookie } = await open((await link(operatorKey, 'acme')).body.url);
    const page = await asSession(cookie!, '/portal');
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(aEndpoint);
    expect(html).not.toContain(bEndpoint);
    expect(html).not.toContain('127.0.0.1:9/b');
    expect(html).toContain('Tenant <strong>acme</strong>');

    const deliveries = await (await asSession(cookie!, '/portal/deliveries')).text();
    expect(deliveries).not.toContain(bDelivery);
    expect((await asSession(cookie!, `/portal/deliveries/${bDelivery}`)).status).toBe(404);
    const listed = (await (await asSession(cookie!, '/v1/endpoints')).json()) as { items: { id: string }[] };
    expect(listed.items.map((e) => e.id)).toEqual([aEndpoint]);
    expect((await asSession(cookie!, `/v1/endpoints/${bEndpoint}`)).status).toBe(404);
    expect((await asSession(cookie!, '/v1/backups')).status).toBe(403);
    expect((await asSession(cookie!, '/v1/status')).status).toBe(403);
    // The console sends a portal session back to its portal.
    const consolePage = await asSession(cookie!, '/console/webhooks');
    expect(consolePage.status).toBe(303);
    expect(consolePage.headers.get('location')).toBe('/portal');

    // A write needs the session's CSRF token; with it, the endpoint is the tenant's whatever the body says.
    const body = { url: 'http://127.0.0.1:9/a2' };
    expect((await asSession(cookie!, '/v1/endpoints', { method: 'POST', body })).status).toBe(403);
    const csrf = csrfOf(html);
    const made = await asSession(cookie!, '/v1/endpoints', { method: 'POST', body, csrf });
    expect(made.status).toBe(201);
    expect(((await made.json()) as { tenantId: string }).tenantId).toBe('acme');
    const foreign = await asSession(cookie!, '/v1/endpoints', {
      method: 'POST',
      body: { ...body, tenantId: 'globex' },
      csrf,
    });
    expect(foreign.status).toBe(403);
  });

  it("revoking the operator's key that made the link closes the portal", async () => {
    const made = await admin()<{ key: string; id: string }>('POST', '/v1/api-keys', {
      name: 'ops2',
      scopes: ['operator'],
    });
    const { cookie } = await open((await link(made.body.key, 'acme')).body.url);
    expect((await asSession(cookie!, '/portal')).status).toBe(200);
    expect((await admin()('DELETE', `/v1/api-keys/${made.body.id}`)).status).toBe(200);
    const after = await asSession(cookie!, '/portal');
    expect(after.status).toBe(401);
    expect((await asSession(cookie!, '/v1/endpoints')).status).toBe(401);
  });

  it('a test send reaches that endpoint alone; a disabled, PagerDuty or unknown endpoint is refused', async () => {
    const api = admin();
    const other = await api<{ id: string }>('POST', '/v1/endpoints', {
      url: 'http://127.0.0.1:9/a3',
      tenantId: 'acme',
      eventTypes: ['opsflow.test', '*'],
    });
    const sent = await api<{ eventId: string; deliveryId: string }>('POST', `/v1/endpoints/${aEndpoint}/test`);
    expect(sent.status).toBe(202);
    const rows = await h.pool.query<{ endpoint_id: string; event_type: string; tenant_id: string }>(
      'SELECT endpoint_id, event_type, tenant_id FROM opsflow.webhook_deliveries WHERE event_id = $1',
      [sent.body.eventId],
    );
    expect(rows.rows).toEqual([{ endpoint_id: aEndpoint, event_type: 'opsflow.test', tenant_id: 'acme' }]);
    expect(rows.rows.some((r) => r.endpoint_id === other.body.id)).toBe(false);

    await api('PATCH', `/v1/endpoints/${other.body.id}`, { enabled: false });
    const disabled = await api<{ error: { code: string; message: string } }>(
      'POST',
      `/v1/endpoints/${other.body.id}/test`,
    );
    expect(disabled.status).toBe(409);
    expect(disabled.body.error.message).toContain('disabled');
    const pd = await api<{ id: string }>('POST', '/v1/endpoints', {
      url: 'http://127.0.0.1:9/pd',
      format: 'pagerduty',
      routingKey: 'a'.repeat(32),
    });
    const paged = await api<{ error: { code: string; message: string } }>('POST', `/v1/endpoints/${pd.body.id}/test`);
    expect(paged.status).toBe(422);
    expect(paged.body.error.message).toContain('page someone');
    expect((await api('POST', '/v1/endpoints/ep_nope/test')).status).toBe(404);
    // A caller still cannot publish opsflow.test itself.
    expect((await api('POST', '/v1/events', { type: 'opsflow.test', payload: {} })).status).toBe(403);
  });
});
