/**
 * Rate limiting, before authentication: a token bucket per caller (capacity = the per-minute limit,
 * refilled continuously), so a client can burst up to its limit and then gets 429 with `Retry-After`
 * (whole seconds until one request is allowed again) and the envelope.
 *
 * It runs before the key is looked up, so wrong keys, `/ready` and `/metrics` are limited too:
 * - a request with a bearer token is counted against that token (a digest of it: one bucket per key);
 * - a request without one is counted against the client's address;
 * - a request whose token was refused (401) is counted against the address as well, and an address whose
 *   bucket is empty is refused before its token is even looked up — so inventing a new wrong key per
 *   request does not escape the limit.
 * Per API process: with N replicas behind a load balancer a caller gets up to N × the limit. Behind a
 * proxy every anonymous caller shares the proxy's address.
 */
import { createHash } from 'node:crypto';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { bearerToken } from './auth.js';
import { errorResponse } from './errors.js';

export function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown'; // app.request() in tests: no socket
  }
}

export function rateLimit(perMinute: number, now: () => number = () => Date.now()): MiddlewareHandler {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const perMs = perMinute / 60_000;
  const refill = (key: string) => {
    const t = now();
    const b = buckets.get(key) ?? { tokens: perMinute, at: t };
    b.tokens = Math.min(perMinute, b.tokens + (t - b.at) * perMs);
    b.at = t;
    // Full buckets carry no information: forget them, so the map stays as small as the active callers.
    if (buckets.size > 50_000) for (const [k, v] of buckets) if (v.tokens >= perMinute) buckets.delete(k);
    buckets.set(key, b);
    return b;
  };
  const refuse = (c: Context, b: { tokens: number }) => {
    const retryAfter = Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
    c.header('Retry-After', String(retryAfter));
    c.header('RateLimit-Limit', String(perMinute));
    c.header('RateLimit-Remaining', '0');
    return errorResponse(c, 429, 'rate_limited', `Rate limit of ${perMinute} requests per minute exceeded`, {
      retryAfterSeconds: retryAfter,
    });
  };

  return async (c, next) => {
    const token = bearerToken(c);
    const address = `addr:${clientAddress(c)}`;
    const byAddress = refill(address);
    if (byAddress.tokens < 1) return refuse(c, byAddress);
    const b = token ? refill(`key:${createHash('sha256').update(token).digest('hex').slice(0, 32)}`) : byAddress;
    if (b.tokens < 1) return refuse(c, b);
    b.tokens -= 1;
    c.header('RateLimit-Limit', String(perMinute));
    c.header('RateLimit-Remaining', String(Math.floor(b.tokens)));
    await next();
    if (token && c.res.status === 401) byAddress.tokens -= 1;
  };
}
