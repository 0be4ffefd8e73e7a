/**
 * Bearer API keys. Every configured key is compared in constant time (SHA-256 digests, so lengths do not
 * leak either); logs carry a key id — a digest prefix — never the key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { errorResponse } from './errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function keyId(key: string): string {
  return digest(key).toString('hex').slice(0, 12);
}

export function apiKeyAuth(keys: string[]): MiddlewareHandler {
  const digests = keys.map((k) => ({ d: digest(k), id: keyId(k) }));
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) {
      c.header('WWW-Authenticate', 'Bearer');
      return errorResponse(c, 401, 'unauthorized', 'Missing API key: send "Authorization: Bearer <key>"');
    }
    const presented = digest(match[1]);
    let found: string | undefined;
    for (const k of digests) {
      // No early exit: the time taken does not depend on which key matched.
      if (timingSafeEqual(presented, k.d)) found = k.id;
    }
    if (!found) {
      c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      return errorResponse(c, 401, 'unauthorized', 'Invalid API key');
    }
    c.set('keyId', found);
    await next();
  };
}
