/**
 * Rate limiting per API key: a token bucket per key id (capacity = the per-minute limit, refilled
 * continuously), so a client can burst up to its limit and then gets 429 with `Retry-After` (whole seconds
 * until one request is allowed again) and the envelope. Per API process: with N replicas behind a load
 * balancer a key gets up to N × the limit.
 */
import type { MiddlewareHandler } from 'hono';
import { errorResponse } from './errors.js';

export function rateLimit(perMinute: number, now: () => number = () => Date.now()): MiddlewareHandler {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const perMs = perMinute / 60_000;
  return async (c, next) => {
    const key = (c.get('keyId') as string | undefined) ?? 'anonymous';
    const t = now();
    const b = buckets.get(key) ?? { tokens: perMinute, at: t };
    b.tokens = Math.min(perMinute, b.tokens + (t - b.at) * perMs);
    b.at = t;
    buckets.set(key, b);
    c.header('RateLimit-Limit', String(perMinute));
    if (b.tokens < 1) {
      const retryAfter = Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
      c.header('Retry-After', String(retryAfter));
      c.header('RateLimit-Remaining', '0');
      return errorResponse(c, 429, 'rate_limited', `Rate limit of ${perMinute} requests per minute exceeded`, {
        retryAfterSeconds: retryAfter,
      });
    }
    b.tokens -= 1;
    c.header('RateLimit-Remaining', String(Math.floor(b.tokens)));
    await next();
  };
}
