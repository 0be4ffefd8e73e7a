/// <reference lib="dom" />
/**
 * The console in a real browser: Debian's Chromium (CHROMIUM_PATH, default /usr/bin/chromium) driven by
 * puppeteer-core against the production app served on loopback, after real work on the real Temporal server
 * and PostgreSQL — deliveries and a dead letter (real HTTP receivers), a verified and a failed backup (real
 * pg_dump/pg_restore), a rolled-back deploy and one waiting for approval (the deploy test service).
 *
 * It logs in, opens every page, checks the figures shown against the API's answers, clicks redrive, approve
 * and pause, and saves a screenshot of each page under test-results/console/. Any console error or a request
 * to anything but this loopback server fails it. `npm run test:browser` (not part of `npm test`, so a machine
 * without Chromium can run the suite); `.ci/run` installs Chromium and runs it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ServerType } from '@hono/node-server';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declareSchedules } from '../../lib/schedules/declarations.js';
import { applySchedules } from '../../worker/schedules.js';
import { freePort } from '../global-setup.js';
import { databaseUrlOf, dropDatabase, queryIn, recreateDatabase } from '../helpers/databases.js';
import { serviceTarget, stopServices } from '../helpers/deploy-service.js';
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

const SHOTS = path.resolve('test-results/console');
const source = `console_source_${process.pid}`;
const missing = `console_missing_${process.pid}`;

describe('the console in Chromium', () => {
  let h: Harness;
  let workers: TestWorkers;
  let server: ServerType;
  let base: string;
  let browser: Browser;
  let page: Page;
  let ui: ChromiumPage;
  let dir: string;
  let good: Receiver;
  let flaky: Receiver;
  let flakyAnswer = 500;
  const ports: Record<string, number> = {};
  let deployerKey: string;

  const api = async <T = Record<string, unknown>>(p: string, body?: unknown, key = TEST_API_KEY) => {
    const res = await fetch(`${base}${p}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${p}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  };
  const deployStatus = async (id: string) =>
    (await api<{ status: string }>(`/v1/deploys/${encodeURIComponent(id)}`)).status;

  beforeAll(async () => {
    await requireChromium(SHOTS);
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-console-'));
    good = await startReceiver((_r, res) => {
      res.writeHead(200).end('ok');
    });
    flaky = await startReceiver((_r, res) => {
      res.writeHead(flakyAnswer).end(flakyAnswer === 200 ? 'ok' : 'down');
    });
    await recreateDatabase(source);
    await queryIn(
      source,
      'CREATE TABLE accounts (id int PRIMARY KEY, name text); INSERT INTO accounts SELECT g, md5(g::text) FROM generate_series(1, 2000) g',
    );
    for (const n of ['web', 'prod']) ports[n] = await freePort();
    const targets = [
      serviceTarget(dir, 'web', ports.web!),
      serviceTarget(dir, 'prod', ports.prod!, { environment: 'production', approvalTimeoutSec: 3600 }),
    ];
    const targetsFile = path.join(dir, 'targets.json');
    await writeFile(targetsFile, JSON.stringify({ targets }));
    h = await createHarness({
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      DEPLOY_TARGETS_FILE: targetsFile,
      BACKUP_DATABASE_URLS: `${databaseUrlOf(source)},${databaseUrlOf(missing)}`,
      TEMPORAL_UI_URL: 'http://127.0.0.1:8233',
    });
    workers = await startWorkers(h, ['system', 'webhooks', 'subscriptions', 'backups', 'deploys']);
    await applySchedules(h.client, declareSchedules(h.config, h.queues)); // as a worker process's start does
    ({ server, base } = await serveOnLoopback(testApp(h).fetch));

    // ---- real work ----
    // Both take only the test's events (opsflow's own ops events — deploy.*, backup.* — go elsewhere).
    const ok = await api<{ id: string }>('/v1/endpoints', {
      url: `${good.url}/hook`,
      description: 'billing app',
      eventTypes: ['console.test'],
    });
    await api('/v1/endpoints', {
      url: `${flaky.url}/hook`,
      description: 'flaky partner',
      retrySchedule: ['0s'],
      eventTypes: ['console.test'],
    });
    for (let i = 0; i < 3; i++) await api('/v1/events', { type: 'console.test', payload: { i } });
    await waitFor(
      async () =>
        (
          await h.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM opsflow.webhook_deliveries WHERE endpoint_id = $1 AND status = 'delivered'`,
            [ok.id],
          )
        ).rows[0]!.n,
      (n) => n === 3,
      30_000,
    );
    await waitFor(
      async () => (await api<{ items: unknown[] }>('/v1/dead-letters')).items.length,
      (n) => n === 3,
      30_000,
    );

    const expiresAt = new Date(Date.now() + 2 * 86400_000).toISOString();
    const put = await fetch(`${base}/v1/subscriptions/console-sub-1`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tenantId: 'acme', email: 'ops@acme.example', plan: 'pro', expiresAt, sendAt: null }),
    });
    expect(put.status, await put.clone().text()).toBeLessThan(300);

    const verified = await api<{ id: string }>('/v1/backups', { database: source });
    const failed = await api<{ id: string }>('/v1/backups', { database: missing });
    for (const [id, want] of [
      [verified.id, 'verified'],
      [failed.id, 'failed'],
    ] as const) {
      await waitFor(
        async () => (await api<{ status: string }>(`/v1/backups/${encodeURIComponent(id)}`)).status,
        (s) => s === want,
        90_000,
        250,
      );
    }

    const first = await api<{ id: string }>('/v1/deploys', { target: 'web', version: '1.0.0' });
    await waitFor(
      () => deployStatus(first.id),
      (s) => s === 'succeeded',
      60_000,
      250,
    );
    const broken = await api<{ id: string }>('/v1/deploys', { target: 'web', version: '1.1.0-bad500' });
    await waitFor(
      () => deployStatus(broken.id),
      (s) => s === 'rolled_back',
      60_000,
      250,
    );
    deployerKey = (await api<{ key: string }>('/v1/api-keys', { name: 'ci-deployer', scopes: ['deployer'] })).key;
    const waiting = await api<{ id: string }>('/v1/deploys', { target: 'prod', version: '3.0.0' }, deployerKey);
    await waitFor(
      () => deployStatus(waiting.id),
      (s) => s === 'awaiting_approval',
      30_000,
      250,
    );

    // ---- the browser ----
    ui = await openChromium(base, SHOTS);
    ({ browser, page } = ui);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    server?.close();
    await workers?.stop();
    await h?.close();
    await good?.close();
    await flaky?.close();
    await stopServices(dir, Object.keys(ports));
    await dropDatabase(source);
    await rm(dir, { recursive: true, force: true });
  });

  const shot = (name: string) => ui.shot(name);
  const open = async (p: string) => {
    const res = await page.goto(`${base}${p}`, { waitUntil: 'networkidle0' });
    expect(res?.status(), p).toBe(200);
  };
  const text = (selector: string) => ui.text(selector);
  const cardNumber = async (id: string) => Number(await page.$eval(`#${id} .n`, (e) => e.textContent));
  const plotsDrawn = () =>
    page.$$eval('figure[data-plot]', (fs) => fs.map((f) => [f.id, f.dataset.drawn ?? 'no'] as const));

  it('logs in with an API key (a wrong one is refused) and shows the overview as /v1/status does', async () => {
    await page.goto(`${base}/console`, { waitUntil: 'networkidle0' });
    expect(page.url()).toBe(`${base}/console/login?next=%2Fconsole`);
    await page.type('#key', 'opsk_wrong-key-for-sure-000000');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    expect(await text('#login-error')).toMatch(/unknown, revoked or expired/);
    await page.type('#key', TEST_API_KEY);
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('button[type=submit]')]);
    expect(page.url()).toBe(`${base}/console`);
    const cookies = await browser.defaultBrowserContext().cookies();
    const session = cookies.find((c) => c.name === 'opsflow_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });

    const status = await api<{ problems: string[] }>('/v1/status');
    const shown = await page.$$eval('#problems li', (ls) => ls.map((l) => l.textContent?.trim()));
    expect(shown).toEqual(status.problems);
    // The failed backup of the missing database makes it stale: the overview says so.
    expect(await text('tr[data-family="backups"]')).toMatch(/1 stale/);
    expect(await text('tr[data-family="deploys"]')).toMatch(/1 awaiting approval/);
    await shot('overview');
  });

  it('webhooks: the figures are the API’s, the plots are drawn, and a dead letter is redriven', async () => {
    await open('/console/webhooks');
    const letters = await api<{ items: { id: string; deliveryId: string }[] }>('/v1/dead-letters');
    expect(await cardNumber('dlq-total')).toBe(letters.items.length);
    const shownLetters = await page.$$eval('tr[data-dead-letter]', (rs) =>
      rs.map((r) => r.getAttribute('data-dead-letter')),
    );
    expect(shownLetters.sort()).toEqual(letters.items.map((l) => l.id).sort());
    expect(await cardNumber('delivered-total')).toBe(3);
    // 3 delivered + 3 failed attempts in this hour.
    expect(await cardNumber('attempts-range')).toBe(6);
    expect(await plotsDrawn()).toEqual([
      ['figure-deliveries', '2'],
      ['figure-attempts', '2'],
      ['figure-latency', '3'],
      ['figure-dlq', '1'],
    ]);
    const endpoints = await api<{ items: { id: string }[] }>('/v1/endpoints');
    const status = await api<{ webhooks: { failingEndpoints: { id: string }[] } }>('/v1/status');
    const failing = new Set(status.webhooks.failingEndpoints.map((e) => e.id));
    expect(failing.size).toBe(1);
    for (const e of endpoints.items) {
      const health = await text(`tr[data-endpoint="${e.id}"]`);
      expect(health).toMatch(failing.has(e.id) ? /failing since/ : /healthy/);
    }
    // Links go to the Temporal UI, for the delivery's workflow.
    const link = await page.$eval(`tr[data-dead-letter="${letters.items[0]!.id}"] a.temporal`, (a) =>
      a.getAttribute('href'),
    );
    expect(link).toBe(
      `http://127.0.0.1:8233/namespaces/default/workflows/${encodeURIComponent(`webhook:${letters.items[0]!.deliveryId}`)}`,
    );
    await shot('webhooks');

    flakyAnswer = 200;
    const target = letters.items[0]!;
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'networkidle0' }),
      page.click(`tr[data-dead-letter="${target.id}"] form[data-what^="Redrive"] button`),
    ]);
    expect(await text('#flash')).toMatch(/Redrive .*: done/);
    await waitFor(
      async () => (await api<{ status: string }>(`/v1/deliveries/${target.deliveryId}`)).status,
      (s) => s === 'delivered',
      30_000,
    );
    await open('/console/webhooks');
    expect(await cardNumber('dlq-total')).toBe(letters.items.length - 1);
    expect(await page.$(`tr[data-dead-letter="${target.id}"]`)).toBeNull();

    // The failing endpoint's other dead letters: one Recover of its last hour, from its row, followed on the page.
    const flaky = [...failing][0]!;
    const open0 = letters.items.filter((l) => l.id !== target.id).length;
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'networkidle0' }),
      page.click(`tr[data-endpoint="${flaky}"] form[data-what^="Recover"] button`),
    ]);
    expect(await text('#flash')).toMatch(/Recover .*: done/);
    const recovered = await waitFor(
      () =>
        api<{ items: { id: string; state: string; resent: number; total: number }[] }>(
          `/v1/recovers?endpointId=${flaky}`,
        ),
      (r) => r.items[0]?.state === 'finished',
      30_000,
    );
    expect(recovered.items[0]!.total).toBe(open0);
    await waitFor(
      async () => (await api<{ items: unknown[] }>('/v1/dead-letters')).items.length,
      (n) => n === 0,
      30_000,
    );
    await open('/console/webhooks');
    expect(await text(`tr[data-recover="${recovered.items[0]!.id}"]`)).toMatch(
      new RegExp(`${open0} of ${open0}[\\s\\S]*finished`),
    );
    expect(await cardNumber('dlq-total')).toBe(0);
    await open('/console/webhooks?range=7d');
    expect((await plotsDrawn()).length).toBe(4);
  });

  it('subscriptions: expiring by urgency and reminders as the API lists them', async () => {
    await open('/console/subscriptions');
    const expiring = await api<{ items: { id: string }[] }>('/v1/subscriptions?status=active&expiringWithin=7d');
    const urgency = await page.$$eval('#expiring-by-urgency .card .n', (ns) => ns.map((n) => Number(n.textContent)));
    expect(urgency.reduce((a, b) => a + b, 0)).toBe(expiring.items.length);
    expect(await cardNumber('urgency-within-3-days')).toBe(1);
    const sub = await api<{ reminders: { sentAt: string; outcome: string }[] }>('/v1/subscriptions/console-sub-1');
    const today = new Date().toISOString().slice(0, 10);
    const sentToday = sub.reminders.filter((r) => r.outcome === 'sent' && r.sentAt.startsWith(today)).length;
    expect(sentToday).toBeGreaterThan(0);
    expect(await text('h2:nth-of-type(2)')).toBe(`Reminders sent today (${sentToday})`);
    expect(await page.$('tr[data-subscription="console-sub-1"] a.temporal')).not.toBeNull();
    await shot('subscriptions');
  });

  it('backups: the last verified backup as /v1/status has it, a failed one shown failed, size and duration plots', async () => {
    await open('/console/backups');
    const status = await api<{ backups: { database: string; lastVerifiedAt: string | null; stale: boolean }[] }>(
      '/v1/status',
    );
    for (const b of status.backups) {
      const shown = await page.$eval(
        `section[data-database="${b.database}"] .last-verified`,
        (e) => e.querySelector('time')?.getAttribute('datetime') ?? e.textContent?.trim(),
      );
      expect(shown).toBe(b.lastVerifiedAt ?? '—');
      expect(await text(`section[data-database="${b.database}"] p`)).toMatch(b.stale ? /stale/ : /fresh/);
    }
    const list = await api<{ items: { id: string; status: string }[] }>(`/v1/backups?database=${missing}`);
    expect(list.items[0]!.status).toBe('failed');
    expect(await text(`tr[data-backup="${list.items[0]!.id}"]`)).toMatch(/failed/);
    const drawn = Object.fromEntries(await plotsDrawn());
    expect(drawn[`figure-size-${source}`]).toBe('1');
    expect(drawn[`figure-duration-${source}`]).toBe('2');
    await shot('backups');
  });

  it('deploys: the rolled-back deploy and its health samples, and a pending one approved from the page', async () => {
    await open('/console/deploys');
    const rows = await page.$$eval('tr[data-deploy]', (rs) =>
      rs.map((r) => [r.getAttribute('data-deploy')!, r.querySelector('.state')!.textContent.trim()] as const),
    );
    expect(rows.length).toBe(3);
    for (const [id, shown] of rows) expect(shown).toBe(await deployStatus(id));
    expect(rows.map(([, s]) => s).sort()).toEqual(['awaiting_approval', 'rolled_back', 'succeeded']);
    expect(Object.fromEntries(await plotsDrawn())['figure-samples-web']).toBe('2');
    await shot('deploys');

    const pending = await page.$eval('tr[data-pending]', (r) => r.getAttribute('data-pending')!);
    await page.type(`tr[data-pending="${pending}"] input[name=comment]`, 'looks good from the console');
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'networkidle0' }),
      page.click(`tr[data-pending="${pending}"] form[data-what^="Approve"] button`),
    ]);
    expect(await text('#flash')).toMatch(/Approve .*: done/);
    const decided = await api<{ decision: { approved: boolean; by: string; comment: string } }>(
      `/v1/deploys/${encodeURIComponent(pending)}`,
    );
    expect(decided.decision).toMatchObject({ approved: true, comment: 'looks good from the console' });
    expect(decided.decision.by).toBe('env-1');
    await waitFor(
      () => deployStatus(pending),
      (s) => s === 'succeeded',
      60_000,
      250,
    );
    await open('/console/deploys');
    expect(await page.$('tr[data-pending]')).toBeNull();
  });

  it('schedules: paused from the page with a note, as the API then reports, and unpaused', async () => {
    await open('/console/schedules');
    const { items } = await api<{ items: { id: string; paused: boolean; applied: boolean }[] }>('/v1/schedules');
    const shownIds = await page.$$eval('tr[data-schedule]', (rs) => rs.map((r) => r.getAttribute('data-schedule')));
    expect(shownIds).toEqual(items.map((s) => s.id));
    const id = items.find((s) => s.applied && !s.paused)!.id;
    await page.type(`tr[data-schedule="${id}"] input[name=note]`, 'maintenance window');
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'networkidle0' }),
      page.click(`tr[data-schedule="${id}"] form[data-what^="Pause"] button`),
    ]);
    expect(await text('#flash')).toMatch(/Pause .*: done/);
    expect(await api(`/v1/schedules/${id}`)).toMatchObject({ paused: true, note: 'maintenance window' });
    expect(await text(`tr[data-schedule="${id}"] .note`)).toBe('maintenance window');
    await shot('schedules');
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'networkidle0' }),
      page.click(`tr[data-schedule="${id}"] form[data-what^="Unpause"] button`),
    ]);
    expect(await api(`/v1/schedules/${id}`)).toMatchObject({ paused: false });
  });

  it('a write the API refuses shows its message and changes nothing', async () => {
    await open('/console/schedules');
    const { items } = await api<{ items: { id: string; paused: boolean }[] }>('/v1/schedules');
    const id = items[0]!.id;
    // Only spaces: the API's validation (a trimmed note of at least one character) refuses it.
    await page.type(`tr[data-schedule="${id}"] input[name=note]`, '   ');
    await page.click(`tr[data-schedule="${id}"] form[data-what^="Pause"] button`);
    await page.waitForFunction(() => document.getElementById('flash')?.classList.contains('error'));
    expect(await text('#flash')).toMatch(/Pause .* failed: .*note/i);
    expect(await api(`/v1/schedules/${id}`)).toMatchObject({ paused: false });
  });

  it('logs out: the pages ask for a key again and the old cookie opens nothing', async () => {
    await open('/console');
    const cookie = (await browser.defaultBrowserContext().cookies()).find((c) => c.name === 'opsflow_session')!;
    await Promise.all([page.waitForNavigation(), page.click('header form button')]);
    expect(page.url()).toBe(`${base}/console/login`);
    const res = await fetch(`${base}/v1/status`, { headers: { cookie: `opsflow_session=${cookie.value}` } });
    expect(res.status).toBe(401);
  });

  it('made no request off this server, logged no console error, and was refused only where the test asked', () => {
    expect(ui.foreignRequests).toEqual([]);
    expect(ui.consoleErrors).toEqual([]);
    // The wrong key at login and the blank pause note; nothing else (no missing asset, no favicon).
    expect(ui.failedResponses).toEqual([
      'POST /console/login 401',
      'POST /v1/schedules/opsflow%3Asystem-check/pause 400',
    ]);
  });
});
