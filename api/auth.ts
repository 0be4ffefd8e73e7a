/**
 * Bearer API keys with scopes. `authenticate` turns the presented key into a principal (or a 401);
 * `requireScope` — attached to each route by `route()` in scoped.ts — answers 403 naming the missing scope.
 * Logs carry the key's id, never the key.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { KeyStore, Principal } from '../lib/keys/store.js';
import type { Actor, Scope } from '../lib/keys/scopes.js';
import { ApiError, errorResponse } from './errors.js';

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(c: Context): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
  return match?.[1];
}

export function apiKeyAuth(store: KeyStore): MiddlewareHandler {
  return async (c, next) => {
    const token = bearerToken(c);
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

export function requireScope(scope: Scope): MiddlewareHandler {
  return async (c, next) => {
    const principal = c.get('principal') as Principal | undefined;
    if (!principal?.scopes.has(scope)) {
      return errorResponse(c, 403, 'forbidden', `This API key lacks the scope ${scope}`, { requiredScope: scope });
    }
    await next();
  };
}

/** The key that is acting, as records name it. Routes behind `apiKeyAuth` always have one. */
export function actorOf(c: Context): Principal {
  const principal = c.get('principal') as Principal | undefined;
  if (!principal) throw new ApiError(401, 'unauthorized', 'no API key on this request');
  return principal;
}

export const asActor = (p: Principal): Actor => ({ keyId: p.keyId, keyName: p.keyName });
