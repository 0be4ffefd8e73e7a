/// <reference lib="dom" />
/**
 * The tenant portal in a real browser: Debian's Chromium driven by puppeteer-core against the production app on
 * loopback, with a webhooks worker on the real Temporal server and PostgreSQL, and real HTTP receivers.
 *
 * The operator asks for a link for tenant acme; the browser opens it and, as acme's customer would, adds an
 * endpoint (its secret shown once), sends it a test event the receiver verifies with that secret (Standard
 * Webhooks), rotates the secret and verifies the next test with the new one, edits the endpoint, reads its
 * deliveries and their attempts, recovers a failing endpoint's window once its receiver is fixed, and reads the
 * event catalogue. Tenant globex's endpoint, delivery and URL appear nowhere; its delivery's page is 404, operator
 * routes are refused from the page, the console sends the session back to the portal, and after logging out the
 * portal is closed. Any console error or a request to anything but this loopback server fails it.
 */
import path from 'node:path';
import type { ServerType } from '@hono/node-server';
import type { Browser, Page } from 'puppeteer-core';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from '../helpers/harness.js';
import { openChromium, requireChromium, serveOnLoopback, type ChromiumPage } from '../helpers/browser.js';
import { startReceiver, type Receiver } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const SHOTS = path.resolve('test-results/portal');

describe('the tenant portal in Chromium', () => {
  let h: Harness;
  let workers: TestWorkers;
  let server: ServerType;
  let base: string;
  let browser: Browser;
  let page: Page;
  let ui: ChromiumPage;
  let acme: Receiver;
  let globex: Receiver;
  let flakyAnswer = 500;
  const ids = { acmeHook: '', acmeFlaky: '', added: '', globexEndpoint: '', globexDelivery: '', flakyDelivery: '' };

  const api = async <T = Record<string, unknown>>(p: string, body?: unknown, method?: string) => {
    const res = await fetch(`${base}${p}`, {
      method: method ?? (body === undefined ? 'GET' : 'POST'),
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${p}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  };
  const deliveryStatus = async (id: string) => (await api<{ status: string }>(`/v1/deliveries/${id}`)).status;

  beforeAll(async () => {
    await requireChromium(SHOTS);
    acme = await startReceiver((r, res) => {
      res
        .writeHead(r.path === '/flaky' ? flakyAnswer : 200)
        .end(r.path === '/flaky' && flakyAnswer !== 200 ? 'down' : 'ok');
    });
    globex = await startReceiver((_r, res) => {
      res.writeHead(200).end('ok');
    });
    h = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    workers = await startWorkers(h, ['webhooks']);
    ({ server, base } = await serveOnLoopback(testApp(h).fetch));

    // The operator's set-up: two tenants' endpoints, a catalogue, an event each, one of acme's dead-lettered.
    ids.globexEndpoint = (
      await api<{ id: string }>('/v1/endpoints', { url: `${globex.url}/globex-secret-path`, tenantId: 'globex' })
    ).id;
    ids.acmeHook = (
      await api<{ id: string }>('/v1/endpoints', {
        url: `${acme.url}/hook`,
        tenantId: 'acme',
        eventTypes: ['invoice.*'],
      })
    ).id;
    ids.acmeFlaky = (
      await api<{ id: string }>('/v1/endpoints', {
        url: `${acme.url}/flaky`,
        tenantId: 'acme',
        retrySchedule: ['0s'],
        eventTypes: ['invoice.*'],
      })
    ).id;
    await api('/v1/event-types', {
      name: 'invoice.paid',
      description: 'An invoice was paid',
      schema: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
    });
    await api('/v1/event-types', { name: 'invoice.voided', description: 'An invoice was voided' });
    await api('/v1/event-types/invoice.voided', { deprecated: true, deprecationNote: 'use invoice.canceled' }, 'PATCH');
    const g = await api<{ deliveries: { id: string }[] }>('/v1/events', {
      type: 'invoice.paid',
      payload: { id: 'in_globex' },
      tenantId: 'globex',
    });
    ids.globexDelivery = g.deliveries[0]!.id;
    const a = await api<{ deliveries: { id: string; endpointId: string }[] }>('/v1/events', {
      type: 'invoice.paid',
      payload: { id: 'in_acme' },
      tenantId: 'acme',
    });
    ids.flakyDelivery = a.deliveries.find((d) => d.endpointId === ids.acmeFlaky)!.id;
    await waitFor(
      () => deliveryStatus(ids.flakyDelivery),
      (s) => s === 'dead_lettered',
      30_000,
    );
    await waitFor(
      () => deliveryStatus(ids.globexDelivery),
      (s) => s === 'delivered',
      30_000,
    );

    ui = await openChromium(base, SHOTS);
    ({ browser, page } = ui);
  }, 300_000);

  afterAll(async () => {
    // The browser tests share a database: no endpoint of this file outlives it.
    for (const id of [ids.acmeHook, ids.acmeFlaky, ids.added, ids.globexEndpoint].filter(Boolean)) {
      await api(`/v1/endpoints/${id}`, undefined, 'DELETE').catch(() => undefined);
    }
    await browser?.close();
    server?.close();
    await workers?.stop();
    await h?.close();
    await acme?.close();
    await globex?.close();
  });

  const shot = (name: string) => ui.shot(name);
  const text = (selector: string) => ui.text(selector);
  const open = async (p: string, status = 200) => {
    const res = await page.goto(`${base}${p}`, { waitUntil: 'networkidle0' });
    expect(res?.status(), p).toBe(status);
  };
  /** Submits a form and waits for what it does: a reload, or (a revealed secret) the flash. */
  const submit = async (selector: string, reloads = true) => {
    if (reloads) {
      await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click(`${selector} button`)]);
    } else {
      await page.click(`${selector} button`);
      await page.waitForFunction(() => /done/.test(document.getElementById('flash')?.textContent ?? ''));
    }
    return text('#flash');
  };
  const nothingOfGlobex = async () => {
    const content = await page.content();
    for (const s of [ids.globexEndpoint, ids.globexDelivery, 'globex-secret-path', 'globex']) {
      expect(content, s).not.toContain(s);
    }
  };
  const testRequests = (p: string) =>
    acme.requests.filter(
      (r) => r.path === p && (JSON.parse(r.body || '{}') as { type?: string }).type === 'opsflow.test',
    );

  it("opens from the operator's one-time link onto the tenant's own endpoints", async () => {
    const link = await api<{ url: string }>('/v1/tenants/acme/portal-links', { expiresInSec: 3600 });
    const url = link.url.replace(/^http:\/\/[^/]+/, base);
    await page.goto(url, { waitUntil: 'networkidle0' });
    // The link's page has a button (a link preview that fetches it spends nothing); pressing it opens the portal.
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#open-portal')]);
    expect(page.url()).toBe(`${base}/portal`);
    const cookies = await browser.defaultBrowserContext().cookies();
    expect(cookies.find((c) => c.name === 'opsflow_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(await text('#portal-tenant')).toMatch(/Tenant acme/);
    expect(await page.$(`#endpoint-${ids.acmeHook}`)).not.toBeNull();
    expect(await page.$(`#endpoint-${ids.acmeFlaky}`)).not.toBeNull();
    await nothingOfGlobex();
    await shot('endpoints');
    // The link opened once: a second visit is refused.
    const again = await fetch(url, { redirect: 'manual' });
    expect(again.status).toBe(410);
  });

  it('adds an endpoint, sends it a test event verified with its secret, rotates the secret and verifies again', async () => {
    await page.type('#add-endpoint input[name=url]', `${acme.url}/added`);
    await page.type('#add-endpoint input[name=eventTypes]', 'invoice.paid, invoice.refunded');
    await page.type('#add-endpoint input[name=description]', 'from the portal');
    const flash = await submit('#add-endpoint', false);
    const secret = /(whsec_\S+)/.exec(flash)?.[1];
    expect(secret, flash).toBeDefined();
    const mine = await api<{ items: { id: string; url: string; tenantId: string; eventTypes: string[] }[] }>(
      '/v1/endpoints?tenantId=acme',
    );
    const added = mine.items.find((e) => e.url === `${acme.url}/added`)!;
    expect(added).toMatchObject({ tenantId: 'acme', eventTypes: ['invoice.paid', 'invoice.refunded'] });
    ids.added = added.id;

    await open('/portal');
    expect(await submit(`#test-${ids.added}`)).toMatch(/Test event sent: done/);
    await waitFor(
      () => Promise.resolve(testRequests('/added').length),
      (n) => n === 1,
      30_000,
    );
    const first = testRequests('/added')[0]!;
    const verified = new Webhook(secret!).verify(first.body, first.headers as Record<string, string>) as {
      type: string;
      data: { endpointId: string };
    };
    expect(verified).toMatchObject({ type: 'opsflow.test', data: { endpointId: ids.added } });
    // The test went to this endpoint alone.
    expect(testRequests('/hook')).toEqual([]);

    const rotated = await submit(`#rotate-${ids.added}`, false);
    const next = /(whsec_\S+)/.exec(rotated)?.[1];
    expect(next).toBeDefined();
    expect(next).not.toBe(secret);
    await open('/portal');
    await submit(`#test-${ids.added}`);
    await waitFor(
      () => Promise.resolve(testRequests('/added').length),
      (n) => n === 2,
      30_000,
    );
    const second = testRequests('/added')[1]!;
    expect(() => new Webhook(next!).verify(second.body, second.headers as Record<string, string>)).not.toThrow();
    await shot('added');
  });

  it('edits an endpoint: its event types, rate limit and description', async () => {
    await open('/portal');
    await page.click(`#endpoint-${ids.added} details summary`);
    const form = `#edit-${ids.added}`;
    await page.$eval(`${form} input[name=eventTypes]`, (e) => (e.value = ''));
    await page.type(`${form} input[name=eventTypes]`, 'invoice.*');
    await page.type(`${form} input[name=rateLimitPerSecond]`, '5');
    expect(await submit(form)).toMatch(/Endpoint saved: done/);
    const ep = await api<{ eventTypes: string[]; rateLimitPerSecond: number; description: string; enabled: boolean }>(
      `/v1/endpoints/${ids.added}`,
    );
    expect(ep).toMatchObject({
      eventTypes: ['invoice.*'],
      rateLimitPerSecond: 5,
      description: 'from the portal',
      enabled: true,
    });
    // A bad value is the API's 400, said on the page; nothing changes.
    await page.click(`#endpoint-${ids.added} details summary`);
    await page.$eval(`${form} input[name=url]`, (e) => (e.value = 'ftp://nowhere'));
    await page.click(`${form} button`);
    await page.waitForFunction(() => /failed/.test(document.getElementById('flash')?.textContent ?? ''));
    expect(await text('#flash')).toMatch(/Endpoint saved failed: .*url/i);
    expect((await api<{ url: string }>(`/v1/endpoints/${ids.added}`)).url).toBe(`${acme.url}/added`);
  });

  it("shows the tenant's deliveries and a delivery's attempts, and recovers a failing endpoint's window", async () => {
    await open('/portal/deliveries');
    const shown = await page.$$eval('tr[id^="delivery-"]', (rs) => rs.map((r) => r.id.slice('delivery-'.length)));
    const acmes = await h.pool.query<{ id: string }>(
      `SELECT id FROM opsflow.webhook_deliveries WHERE tenant_id = 'acme'`,
    );
    expect(new Set(shown)).toEqual(new Set(acmes.rows.map((d) => d.id)));
    await nothingOfGlobex();
    await open(`/portal/deliveries/${ids.flakyDelivery}`);
    expect(await page.$$eval('tr.attempt', (rs) => rs.length)).toBe(1);
    expect(await text('tr.attempt')).toMatch(/500/);
    await shot('delivery');

    flakyAnswer = 200;
    await open('/portal');
    await page.click(`#endpoint-${ids.acmeFlaky} details summary`);
    // datetime-local is the browser's local time (this test's Chromium runs in the machine's zone).
    const since = await page.evaluate(() => {
      const d = new Date(Date.now() - 3600_000);
      const pad = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    });
    await page.$eval(`#recover-${ids.acmeFlaky} input[name=since]`, (e, v) => (e.value = v), since);
    expect(await submit(`#recover-${ids.acmeFlaky}`)).toMatch(/Recover started: done/);
    await waitFor(
      () => deliveryStatus(ids.flakyDelivery),
      (s) => s === 'delivered',
      30_000,
    );
    const recovers = await api<{ items: { endpointId: string; total: number }[] }>(
      `/v1/recovers?endpointId=${ids.acmeFlaky}`,
    );
    expect(recovers.items).toEqual([expect.objectContaining({ endpointId: ids.acmeFlaky, total: 1 })]);
    await open('/portal');
    expect(await page.content()).toContain(ids.acmeFlaky);
  });

  it('shows the event catalogue with schemas and deprecations', async () => {
    await open('/portal/event-types');
    expect(await text('#type-invoice\\.paid')).toMatch(/An invoice was paid[\s\S]*"required"/);
    expect(await text('#type-invoice\\.voided')).toMatch(/deprecated[\s\S]*use invoice\.canceled/);
    await shot('event-types');
  });

  it("reaches nothing of another tenant's or the operator's, and closes on logout", async () => {
    // Another tenant's delivery is not found (the page repeats only the id that was asked for), nothing of it shown.
    await open(`/portal/deliveries/${ids.globexDelivery}`, 404);
    expect(await text('main')).toMatch(/not found/);
    const notFound = await page.content();
    for (const s of [ids.globexEndpoint, 'globex-secret-path', 'invoice.paid', 'Attempts']) {
      expect(notFound, s).not.toContain(s);
    }
    const answers = await page.evaluate(
      async (ep) =>
        Promise.all(
          [`/v1/endpoints/${ep}`, '/v1/status', '/v1/backups', '/v1/api-keys'].map(
            async (p) => (await fetch(p)).status,
          ),
        ),
      ids.globexEndpoint,
    );
    expect(answers).toEqual([404, 403, 403, 403]);
    await page.goto(`${base}/console/webhooks`, { waitUntil: 'networkidle0' });
    expect(page.url()).toBe(`${base}/portal`);

    await Promise.all([page.waitForNavigation(), page.click('header form button')]);
    expect(await text('#portal-notice')).toMatch(/left the portal/);
    const closed = await page.goto(`${base}/portal`, { waitUntil: 'networkidle0' });
    expect(closed?.status()).toBe(401);
    expect(ui.consoleErrors).toEqual([]);
    expect(ui.foreignRequests).toEqual([]);
  });
});
