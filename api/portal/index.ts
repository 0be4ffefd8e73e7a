/**
 * `/portal`: a tenant's own page, opened by a one-time link an operator asks for
 * (`POST /v1/tenants/{id}/portal-links`, lib/portal/links.ts). Opening the link makes a session for the link's
 * tenant key — the console's sessions, cookie and CSRF rules — and from there the portal is the console's
 * machinery pointed at one tenant: pages rendered from the API's answers to that session, writes sent by
 * console.js to the API. The tenant key's rules hold everywhere, so nothing of another tenant, and no operator
 * route, is reachable from here; a console page opened with a portal session sends it back here.
 */
import type { Context, Hono } from 'hono';
import { getCookie } from 'hono/cookie';
import { html } from 'hono/html';
import type { Principal } from '../../lib/keys/store.js';
import { peekPortalLink, redeemPortalLink } from '../../lib/portal/links.js';
import { auditWriter } from '../audit.js';
import { crossOrigin, sessionCookieName } from '../auth.js';
import { endSession, setSessionCookie } from '../console/session-cookie.js';
import type { ConsoleDeps } from '../console/index.js';
import { layout, type Html, type PageContext } from '../console/html.js';
import { selfApi } from '../console/self-api.js';
import { ApiError } from '../errors.js';
import type { AppEnv } from '../router.js';
import {
  deliveriesPage,
  deliveryPage,
  endpointsPage,
  eventTypesPage,
  PORTAL_SITE,
  type PortalDelivery,
  type PortalDeliveryDetail,
  type PortalEndpoint,
  type PortalEventType,
  type PortalRecover,
} from './pages.js';

type PortalEnv = AppEnv & { Variables: AppEnv['Variables'] & { page: PageContext } };

const REFUSED: Record<'unknown' | 'used' | 'expired' | 'revoked', [404 | 410, string]> = {
  unknown: [404, 'This portal link is not known. Ask your provider for a new one.'],
  used: [410, 'This portal link was opened already: each link opens once. Ask your provider for a new one.'],
  expired: [410, 'This portal link has expired. Ask your provider for a new one.'],
  revoked: [410, "This portal link's access was withdrawn. Ask your provider for a new one."],
};

/** A page with no session: what happened, and no way in but a new link (there is no login form). */
const notice = (c: Context, status: 401 | 403 | 404 | 410, message: string) =>
  c.html(layout(undefined, '', 'Portal', html`<p class="flash error" id="portal-notice">${message}</p>`), status);

export function mountPortal(deps: ConsoleDeps): void {
  const { app, sessions, keyStore, pool } = deps;
  const writeAudit = auditWriter({ pool, log: deps.log, trustedProxies: deps.config.trustedProxies });
  const audit = (c: Context<AppEnv>, actor: Principal, action: string, status: number) =>
    writeAudit(c, {
      actor: { keyId: actor.keyId, keyName: actor.keyName },
      action,
      resource: null,
      status,
      via: 'portal',
    });

  for (const p of ['/portal', '/portal/*']) {
    app.use(p, async (c, next) => {
      await next();
      // As the console: the browser names this origin on the forms' writes, and nothing is cached.
      c.res.headers.set('Referrer-Policy', 'same-origin');
      c.res.headers.set('Cache-Control', 'no-store');
    });
  }

  // The link's GET only shows a button: mail scanners and link previews fetch links, and must not spend a
  // one-time one. The button's POST (from this page: its origin is checked, as the console's login form's is)
  // uses the code and makes the session — a same-site navigation, so the cookie can be SameSite=Strict.
  app.get('/portal/open/:code', async (c) => {
    const code = c.req.param('code');
    const link = await peekPortalLink(pool, code);
    if ('refused' in link) return notice(c, ...REFUSED[link.refused]);
    return c.html(
      layout(
        undefined,
        '',
        'Portal',
        html`<form class="login" method="post" action="/portal/open/${code}">
          <p>
            Your webhook endpoints at tenant <strong>${link.tenantId}</strong>: add and change them, send test events,
            rotate secrets and read their deliveries.
          </p>
          <button type="submit" id="open-portal">Open the portal</button>
          <p class="muted">This link opens once.</p>
        </form>`,
      ),
    );
  });

  app.post('/portal/open/:code', async (c) => {
    if (crossOrigin(c)) return notice(c, 403, 'Cross-origin open refused: use the link itself.');
    const redeemed = await redeemPortalLink(pool, c.req.param('code'));
    if ('refused' in redeemed) return notice(c, ...REFUSED[redeemed.refused]);
    const principal = await keyStore.principalById(redeemed.keyId);
    if (!principal) return notice(c, ...REFUSED.revoked);
    const { token } = await sessions.create(principal.keyId);
    const leftSec = ((principal.expiresAt?.getTime() ?? Date.now()) - Date.now()) / 1000;
    setSessionCookie(c, token, Math.min(leftSec, sessions.ttlMs / 1000));
    deps.log.info({ keyId: principal.keyId, tenantId: principal.tenantId }, 'portal opened');
    await audit(c, principal, 'portalOpen', 303);
    return c.redirect('/portal', 303);
  });

  app.post('/portal/logout', async (c) => {
    const principal = await endSession(c, { sessions, keyStore });
    if (principal) await audit(c, principal, 'portalLogout', 200);
    return notice(c, 401, 'You have left the portal. A new link opens it again.');
  });

  const pages = app.basePath('/portal') as unknown as Hono<PortalEnv>;
  const guard = async (c: Context<PortalEnv>, next: () => Promise<void>) => {
    const token = getCookie(c, sessionCookieName(c));
    const session = token ? await sessions.find(token) : undefined;
    const principal = session ? await keyStore.principalById(session.keyId) : undefined;
    if (!session || !principal) {
      return notice(c, 401, 'This portal session has ended (or never began). Open the portal from a new link.');
    }
    // An operator's session is the console's: the portal shows one tenant.
    if (!principal.tenantId) return c.redirect('/console', 303);
    c.set('principal', principal);
    c.set('keyId', principal.keyId);
    c.set('page', { principal, csrfToken: session.csrfToken, temporalUi: undefined });
    await next();
  };
  const api = <T>(c: Context<PortalEnv>, p: string) => selfApi<T>(app, c, p);
  const page = (sub: string, title: string, body: (c: Context<PortalEnv>) => Promise<Html>) =>
    pages.get(sub, guard, async (c) => {
      const current = sub === '/' ? '/portal' : `/portal${sub}`;
      try {
        return c.html(layout(c.get('page'), current, title, await body(c), PORTAL_SITE));
      } catch (err) {
        // Another tenant's delivery, one that does not exist: the API's 404, said on the page.
        if (err instanceof ApiError && err.status === 404) {
          return c.html(
            layout(c.get('page'), current, title, html`<p class="flash error">${err.message}</p>`, PORTAL_SITE),
            404,
          );
        }
        throw err;
      }
    });

  page('/', 'Endpoints', async (c) => {
    const [endpoints, recovers, types] = await Promise.all([
      api<{ items: PortalEndpoint[] }>(c, '/v1/endpoints?limit=200'),
      api<{ items: PortalRecover[] }>(c, '/v1/recovers?limit=20'),
      api<{ items: PortalEventType[] }>(c, '/v1/event-types?limit=200'),
    ]);
    return endpointsPage(c.get('page'), {
      endpoints: endpoints.items,
      recovers: recovers.items,
      eventTypes: types.items,
    });
  });

  page('/deliveries', 'Deliveries', async (c) => {
    const endpointId = c.req.query('endpointId')?.trim() || undefined;
    const q = new URLSearchParams(endpointId ? { limit: '100', endpointId } : { limit: '100' });
    const { items } = await api<{ items: PortalDelivery[] }>(c, `/v1/deliveries?${q}`);
    return deliveriesPage(c.get('page'), items, endpointId);
  });

  page('/deliveries/:id', 'Delivery', async (c) =>
    deliveryPage(
      c.get('page'),
      await api<PortalDeliveryDetail>(c, `/v1/deliveries/${encodeURIComponent(c.req.param('id') ?? '')}`),
    ),
  );

  page('/event-types', 'Event types', async (c) =>
    eventTypesPage(c.get('page'), (await api<{ items: PortalEventType[] }>(c, '/v1/event-types?limit=200')).items),
  );
}
