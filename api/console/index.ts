/**
 * `/console`: the operator console, served by the API with every asset from npm packages (uPlot) or this
 * directory — it works offline. Logging in exchanges an API key for a session cookie (HttpOnly,
 * SameSite=Strict; lib/console/sessions.ts); pages are rendered here from PostgreSQL and the API's own
 * answers, and every write is a form that console.js posts to the API with the session's CSRF token, so the
 * console can do exactly what its key's scopes allow and nothing the API would refuse.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, Hono } from 'hono';
import { getCookie } from 'hono/cookie';
import { html } from 'hono/html';
import type { KeyStore, Principal } from '../../lib/keys/store.js';
import type { Session, SessionStore } from '../../lib/console/sessions.js';
import { deliveryTotals, endpointHealth, webhookSeries, type Range } from '../../lib/console/data.js';
import type { StatusReport } from '../../lib/status.js';
import type { ApiDeps } from '../deps.js';
import { openDeadLetters } from '../../lib/webhooks/deliveries.js';
import { recoverPage } from '../../lib/webhooks/recover.js';
import { backupHistory } from '../../lib/backups/rows.js';
import { deployTimeline } from '../../lib/deploys/rows.js';
import type { PromotionView } from '../../lib/deploys/target-view.js';
import { subscriptionsOverview } from '../../lib/subscriptions/overview.js';
import { crossOrigin, sessionCookieName } from '../auth.js';
import { endSession, setSessionCookie } from './session-cookie.js';
import { addressBucket, clientAddress, parseCidrs } from '../rate-limit.js';
import type { AuditRecord } from '../../lib/audit/log.js';
import { auditWriter } from '../audit.js';
import { AUDIT_FILTERS, auditPage, type AuditFilterValues } from './pages-audit.js';
import { ApiError } from '../errors.js';
import { selfApi } from './self-api.js';
import type { AppEnv } from '../router.js';
import { layout, type Html, type PageContext } from './html.js';
import { overviewPage, subscriptionsPage, webhooksPage } from './pages.js';
import { backupsPage, deploysPage, schedulesPage, type ScheduleView } from './pages-runs.js';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const uplotDir = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
const ASSETS: Record<string, { type: string; body: Buffer }> = {
  'uPlot.iife.min.js': {
    type: 'text/javascript; charset=utf-8',
    body: readFileSync(path.join(uplotDir, 'uPlot.iife.min.js')),
  },
  'uPlot.min.css': { type: 'text/css; charset=utf-8', body: readFileSync(path.join(uplotDir, 'uPlot.min.css')) },
  'console.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(path.join(here, 'static', 'console.js')) },
  'console.css': { type: 'text/css; charset=utf-8', body: readFileSync(path.join(here, 'static', 'console.css')) },
};

type ConsoleEnv = AppEnv & { Variables: AppEnv['Variables'] & { session: Session; page: PageContext } };

export interface ConsoleDeps extends ApiDeps {
  keyStore: KeyStore;
  sessions: SessionStore;
  /** The whole app, so pages can show the API's own answers (`/v1/status`, `/v1/schedules`). */
  app: Hono<AppEnv>;
}

/** Failed console logins one client address may make per minute before it is refused (429). */
export const LOGIN_FAILURES_PER_MINUTE = 10;

/** Where to go after login: a console path, never another site. */
const safeNext = (next: string | undefined) =>
  next && /^\/console(\/[a-z-]*)?(\?[\w=&-]*)?$/.test(next) ? next : '/console';

export function mountConsole(deps: ConsoleDeps): void {
  const { app, sessions, keyStore, pool, config } = deps;
  const trustedProxies = parseCidrs(config.trustedProxies);
  /** A login or logout in the audit log (the console's writes go through the API and are recorded there). */
  const writeAudit = auditWriter({ pool, log: deps.log, trustedProxies: config.trustedProxies });
  const audit = (c: Context<AppEnv>, actor: Principal | null, action: string, status: number) =>
    writeAudit(c, {
      actor: actor && { keyId: actor.keyId, keyName: actor.keyName },
      action,
      resource: null,
      status,
      via: 'console',
    });
  const temporalUi = config.temporal.uiUrl
    ? { url: config.temporal.uiUrl, namespace: config.temporal.namespace }
    : undefined;

  // Pages say Referrer-Policy same-origin (the API's no-referrer would make the browser send `Origin: null`
  // with their forms and fetches), so the origin checks see where a write came from.
  app.use('/console/*', async (c, next) => {
    await next();
    c.res.headers.set('Referrer-Policy', 'same-origin');
  });
  app.use('/console', async (c, next) => {
    await next();
    c.res.headers.set('Referrer-Policy', 'same-origin');
  });

  app.get('/console/assets/:name', (c) => {
    const asset = ASSETS[c.req.param('name')];
    if (!asset) return c.text('not found', 404);
    c.header('Content-Type', asset.type);
    c.header('Cache-Control', 'public, max-age=3600');
    return c.body(new Uint8Array(asset.body));
  });

  /**
   * Failed logins per client address in the last minute: each is logged (never the key), and an address with
   * LOGIN_FAILURES_PER_MINUTE of them is refused (429) until the oldest falls out of the minute — guessing keys
   * through the form costs what it costs through the API, and the operator sees it.
   */
  const failures = new Map<string, number[]>();
  const recentFailures = (address: string) => {
    const since = Date.now() - 60_000;
    const kept = (failures.get(address) ?? []).filter((t) => t > since);
    if (kept.length === 0) failures.delete(address);
    else failures.set(address, kept);
    return kept;
  };
  const loginPage = (c: Context, status: 200 | 401 | 403 | 429, error?: string) =>
    c.html(
      layout(
        undefined,
        '',
        'Log in',
        html`<form class="login" method="post" action="/console/login">
          <input type="hidden" name="next" value="${safeNext(c.req.query('next'))}" />
          ${error ? html`<p class="flash error" id="login-error">${error}</p>` : ''}
          <label for="key">API key</label>
          <input id="key" name="key" type="password" autocomplete="current-password" required />
          <button type="submit">Log in</button>
          <p class="muted">
            The console acts as this key: it shows what the key may read and offers what its scopes allow. The key stays
            in this browser only as long as the form; the session cookie stands for it.
          </p>
        </form>`,
      ),
      status,
    );

  app.get('/console/login', (c) => loginPage(c, 200));

  app.post('/console/login', async (c) => {
    // A login form posted from another site (login CSRF) is refused when the browser names its origin.
    if (crossOrigin(c)) return loginPage(c, 403, 'Cross-origin login refused.');
    const address = addressBucket(clientAddress(c, trustedProxies));
    const recent = recentFailures(address);
    if (recent.length >= LOGIN_FAILURES_PER_MINUTE) {
      const retryAfter = Math.max(1, Math.ceil((recent[0]! + 60_000 - Date.now()) / 1000));
      c.header('Retry-After', String(retryAfter));
      deps.log.warn({ address, requestId: c.get('requestId') }, 'console login refused: too many failed logins');
      return loginPage(c, 429, `Too many failed logins from this address; try again in ${retryAfter} s.`);
    }
    const form = await c.req.parseBody();
    const key = typeof form.key === 'string' ? form.key.trim() : '';
    const principal = key ? await keyStore.authenticate(key) : undefined;
    if (!principal) {
      failures.set(address, [...recent, Date.now()]);
      // Addresses that failed once and never came back would stay forever: past 10,000, forget the stale ones.
      if (failures.size > 10_000) for (const a of [...failures.keys()]) recentFailures(a);
      // Never the key: the address, and how many failures it has made this minute.
      deps.log.warn(
        { address, failures: recent.length + 1, requestId: c.get('requestId') },
        'console login failed: unknown, revoked or expired key',
      );
      await audit(c, null, 'consoleLogin', 401);
      return loginPage(c, 401, 'That key is unknown, revoked or expired.');
    }
    if (principal.tenantId) {
      // The console shows every tenant's webhooks and the operator's families: it is not a tenant's page.
      await audit(c, principal, 'consoleLogin', 403);
      return loginPage(c, 403, `This key is tenant ${principal.tenantId}'s: the console is for operators' keys.`);
    }
    const { token } = await sessions.create(principal.keyId);
    setSessionCookie(c, token, sessions.ttlMs / 1000);
    deps.log.info({ keyId: principal.keyId }, 'console login');
    await audit(c, principal, 'consoleLogin', 303);
    return c.redirect(safeNext(typeof form.next === 'string' ? form.next : undefined), 303);
  });

  app.post('/console/logout', async (c) => {
    const principal = await endSession(c, { sessions, keyStore });
    if (principal) await audit(c, principal, 'consoleLogout', 303);
    return c.redirect('/console/login', 303);
  });

  // Every page: a live session whose key still holds, else the login page.
  const pages = app.basePath('/console') as unknown as Hono<ConsoleEnv>;
  const guard = async (c: Context<ConsoleEnv>, next: () => Promise<void>) => {
    const token = getCookie(c, sessionCookieName(c));
    const session = token ? await sessions.find(token) : undefined;
    const principal: Principal | undefined = session ? await keyStore.principalById(session.keyId) : undefined;
    // A tenant's session (a portal link's) belongs in its portal: the console is the operator's.
    if (principal?.tenantId) return c.redirect('/portal', 303);
    if (!token || !session || !principal) {
      const next = encodeURIComponent(
        c.req.path + (c.req.url.includes('?') ? c.req.url.slice(c.req.url.indexOf('?')) : ''),
      );
      return c.redirect(`/console/login?next=${next}`, 303);
    }
    c.set('principal', principal);
    c.set('keyId', principal.keyId);
    c.set('session', session);
    c.set('page', { principal, csrfToken: session.csrfToken, temporalUi });
    c.header('Cache-Control', 'no-store');
    await next();
  };

  const api = <T>(c: Context<ConsoleEnv>, p: string) => selfApi<T>(app, c, p);

  const render = (c: Context<ConsoleEnv>, current: string, title: string, body: () => Promise<Html>) => {
    const ctx = c.get('page');
    if (!ctx.principal.scopes.has('read')) {
      return c.html(
        layout(ctx, current, title, html`<p class="flash error">This key lacks the scope <code>read</code>.</p>`),
        403,
      );
    }
    return body().then((b) => c.html(layout(ctx, current, title, b)));
  };

  const page = (sub: string, title: string, body: (c: Context<ConsoleEnv>) => Promise<Html>) =>
    pages.get(sub, guard, (c) => render(c, sub === '/' ? '/console' : `/console${sub}`, title, () => body(c)));

  page('/', 'Overview', async (c) => {
    const [status, expiring] = await Promise.all([
      api<StatusReport>(c, '/v1/status'),
      subscriptionsOverview(pool, config.timezone),
    ]);
    const week = Object.values(expiring.byUrgency).reduce((a, b) => a + b, 0);
    return overviewPage(c.get('page'), status, week);
  });

  page('/webhooks', 'Webhooks', async (c) => {
    const range: Range = c.req.query('range') === '7d' ? '7d' : '24h';
    const [series, totals, endpoints, deadLetters, recovers] = await Promise.all([
      webhookSeries(pool, range),
      deliveryTotals(pool),
      endpointHealth(pool),
      openDeadLetters(pool),
      recoverPage(pool, {}, { limit: 20 }),
    ]);
    return webhooksPage(c.get('page'), { range, series, totals, endpoints, deadLetters, recovers: recovers.items });
  });

  page('/subscriptions', 'Subscriptions', async (c) =>
    subscriptionsPage(c.get('page'), await subscriptionsOverview(pool, config.timezone)),
  );

  page('/backups', 'Backups', async (c) => {
    const status = await api<StatusReport>(c, '/v1/status');
    const history = await backupHistory(
      pool,
      status.backups.map((b) => b.database),
    );
    return backupsPage(c.get('page'), { freshness: status.backups, ...history });
  });

  page('/deploys', 'Deploys', async (c) => {
    const [timeline, declared] = await Promise.all([
      deployTimeline(pool),
      api<{ items: { name: string; promotion: PromotionView | null }[] }>(c, '/v1/deploy-targets'),
    ]);
    return deploysPage(c.get('page'), { ...timeline, targets: declared.items });
  });

  page('/audit', 'Audit', async (c) => {
    const filters: AuditFilterValues = {};
    for (const f of AUDIT_FILTERS) {
      const v = c.req.query(f)?.trim();
      if (v) filters[f] = v;
    }
    if (!c.get('page').principal.scopes.has('audit:read')) return auditPage(filters, { lacking: 'audit:read' });
    const q = new URLSearchParams(filters);
    const cursor = c.req.query('cursor');
    if (cursor) q.set('cursor', cursor);
    q.set('limit', '100');
    try {
      return auditPage(filters, await api<{ items: AuditRecord[]; nextCursor: string | null }>(c, `/v1/audit?${q}`));
    } catch (err) {
      // A filter the API refuses (an unknown outcome, a bad cursor): said on the page, with the form to fix it.
      if (err instanceof ApiError && err.status === 400) return auditPage(filters, { problem: err.message });
      throw err;
    }
  });

  page('/schedules', 'Schedules', async (c) =>
    schedulesPage(c.get('page'), (await api<{ items: ScheduleView[] }>(c, '/v1/schedules')).items),
  );
}
