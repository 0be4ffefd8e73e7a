/**
 * Bearer API keys with scopes (or a console session made by logging in with one). `authenticate` turns the presented key into a principal (or a 401);
 * `requireScope` — attached to each route by `route()` in scoped.ts — answers 403 naming the missing scope.
 * Logs carry the key's id, never the key.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { csrfMatches, SESSION_COOKIE, type SessionStore } from '../lib/console/sessions.js';
import type { KeyStore, Principal } from '../lib/keys/store.js';
import type { Actor, Scope } from '../lib/keys/scopes.js';
import { ApiError, errorResponse } from './errors.js';

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
/** Whether the browser reached the API over https (directly, or through a proxy that says so). */
export const secureRequest = (c: Context) =>
  new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';

/**
 * The session cookie's name: over https `__Host-opsflow_session`, which browsers accept only with Secure,
 * Path=/ and no Domain — so no sibling subdomain can plant or shadow it; over plain http (a laptop) without the
 * prefix, which browsers would refuse there.
 */
export const sessionCookieName = (c: Context) => (secureRequest(c) ? `__Host-${SESSION_COOKIE}` : SESSION_COOKIE);

export function bearerToken(c: Context): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
  return match?.[1];
}

export function apiKeyAuth(store: KeyStore, sessions?: SessionStore): MiddlewareHandler {
  return async (c, next) => {
    const token = bearerToken(c);
    const cookie = sessions && !token ? getCookie(c, sessionCookieName(c)) : undefined;
    if (cookie && sessions) {
      const principal = await sessionPrincipal(c, store, sessions, cookie);
      if (principal instanceof Response) return principal;
      c.set('principal', principal);
      c.set('keyId', principal.keyId);
      return next();
    }
    if (!token) {
      c.header('WWW-Authenticate', 'Bearer');
      return errorResponse(c, 401, 'unauthorized', 'Missing API key: send "Authorization: Bearer <key>"');
    }
    const principal = await store.authenticate(token);
    if (!principal) {
      c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      return errorResponse(c, 401, 'unauthorized', 'Invalid, revoked or expired API key');
    }
    c.set('principal', principal);
    c.set('keyId', principal.keyId);
    await next();
  };
}

/**
 * Whether the browser says a request comes from another origin. No Origin, or `null` (sent when a page's
 * referrer policy hides it), cannot tell: the CSRF token and the SameSite=Strict cookie still hold.
 */
export function crossOrigin(c: Context): boolean {
  const origin = c.req.header('origin');
  return !!origin && origin !== 'null' && origin !== new URL(c.req.url).origin;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A console session's principal, for a request that carries the session cookie and no bearer key: the console's
 * pages call the same API the CLI does. A write must carry the session's CSRF token in `X-CSRF-Token` (a page
 * on another site can make the browser send the cookie, never the header) and, when the browser names an
 * Origin, come from this one.
 */
async function sessionPrincipal(c: Context, store: KeyStore, sessions: SessionStore, cookie: string) {
  const session = await sessions.find(cookie);
  if (!session) return errorResponse(c, 401, 'unauthorized', 'Console session expired or logged out: log in again');
  if (!SAFE_METHODS.has(c.req.method)) {
    if (crossOrigin(c)) {
      return errorResponse(c, 403, 'forbidden', `Cross-origin write refused (Origin ${c.req.header('origin')})`);
    }
    if (!csrfMatches(session, c.req.header('x-csrf-token'))) {
      return errorResponse(c, 403, 'forbidden', 'Missing or wrong X-CSRF-Token for this console session');
    }
  }
  const principal = await store.principalById(session.keyId);
  if (!principal) {
    await sessions.destroy(cookie);
    return errorResponse(c, 401, 'unauthorized', "This console session's API key was revoked or has expired");
  }
  return principal;
}

/**
 * The route's scope, and — for a tenant key — that the route is one of the families a tenant reaches (webhooks and
 * subscriptions); backups, deploys, schedules, status, keys and the audit log are the operator's.
 */
export function requireScope(scope: Scope, tenantRoute = false): MiddlewareHandler {
  return async (c, next) => {
    const principal = c.get('principal') as Principal | undefined;
    if (!principal?.scopes.has(scope)) {
      return errorResponse(c, 403, 'forbidden', `This API key lacks the scope ${scope}`, { requiredScope: scope });
    }
    if (principal.tenantId && !tenantRoute) {
      return errorResponse(
        c,
        403,
        'forbidden',
        `This API key is tenant ${principal.tenantId}'s: it reaches only its tenant's webhooks and subscriptions`,
      );
    }
    await next();
  };
}

/**
 * The tenant a request acts for: a tenant key's own (naming another is 403), or for a global key the tenant it
 * names, if any. Routes of tenant families call it; their services then see only that tenant's rows.
 */
export function tenantScope(c: Context, named?: string | null): string | undefined {
  const own = (c.get('principal') as Principal | undefined)?.tenantId;
  if (!own) return named ?? undefined;
  if (named != null && named !== own) {
    throw new ApiError(403, 'forbidden', `This API key is tenant ${own}'s: it cannot act for tenant ${named}`);
  }
  return own;
}

/** A tenant key's tenant (its reads and writes are limited to it); undefined for a global key. */
export const keyTenant = (c: Context): string | undefined =>
  (c.get('principal') as Principal | undefined)?.tenantId ?? undefined;

/** The key that is acting, as records name it. Routes behind `apiKeyAuth` always have one. */
export function actorOf(c: Context): Principal {
  const principal = c.get('principal') as Principal | undefined;
  if (!principal) throw new ApiError(401, 'unauthorized', 'no API key on this request');
  return principal;
}

export const asActor = (p: Principal): Actor => ({ keyId: p.keyId, keyName: p.keyName });
