/**
 * Rate limiting, before the route runs: a token bucket per caller (capacity = the per-minute limit, refilled
 * continuously), so a client can burst up to its limit and then gets 429 with `Retry-After` (whole seconds
 * until one request is allowed again) and the envelope.
 *
 * Whose budget a request spends:
 * - a request with a valid credential (a bearer key, or a console session cookie) spends its credential's
 *   bucket and nothing else — a stranger at the same address (every client behind one proxy, say) cannot
 *   spend it for you;
 * - a request without a credential, and a request whose credential is refused (401), spend the client's
 *   address bucket; once an address's bucket is empty, a credential from it is looked up before it is served
 *   (a valid one still passes on its own bucket, an invented one is refused) — so a new wrong key per request
 *   does not escape the limit.
 *
 * The client's address is the socket's peer, unless the peer is one of `TRUSTED_PROXIES` (CIDRs): then it is
 * the right-most address in `X-Forwarded-For` that is not a trusted proxy. IPv6 clients are grouped by /64
 * (what one host is usually given), IPv4-mapped IPv6 addresses count as IPv4.
 * Per API process: with N replicas behind a load balancer a caller gets up to N × the limit.
 */
import { createHash } from 'node:crypto';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import ipaddr from 'ipaddr.js';
import { waitAtMost } from '../lib/wait-at-most.js';
import { errorResponse } from './errors.js';
import type { AppEnv } from './router.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** How long an answer waits for the after-the-answer key lookup (below). */
const CHARGE_WAIT_MS = 1000;
type Cidr = [Address, number];

/** CIDR strings → ranges; throws on a bad one (the config validates them first). */
export const parseCidrs = (cidrs: readonly string[]): Cidr[] => cidrs.map((c) => ipaddr.parseCIDR(c));

const parse = (s: string | undefined): Address | undefined => {
  const text = s?.trim().replace(/^\[|\]$/g, '');
  return text && ipaddr.isValid(text) ? ipaddr.process(text) : undefined;
};
const within = (a: Address, ranges: Cidr[]) =>
  ranges.some(([net, bits]) => a.kind() === net.kind() && a.match(net, bits));

/** The socket's peer address, as Node gives it ('unknown' without a socket: app.request() in tests). */
function peerAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * The client a request comes from: the peer, or — when the peer is a trusted proxy — the right-most
 * `X-Forwarded-For` entry that is not itself a trusted proxy (entries left of it are the client's to forge).
 */
export function clientAddress(c: Context, trusted: Cidr[] = []): string {
  const peer = peerAddress(c);
  const peerIp = parse(peer);
  if (!peerIp || trusted.length === 0 || !within(peerIp, trusted)) return peerIp?.toString() ?? peer;
  const hops = (c.req.header('x-forwarded-for') ?? '').split(',').reverse();
  let client: Address = peerIp;
  for (const hop of hops) {
    const ip = parse(hop);
    if (!ip) break; // garbage from the client's side: the last good hop is as far as it can be trusted
    client = ip;
    if (!within(ip, trusted)) break;
  }
  return client.toString();
}

/** The bucket of an address: an IPv4 address itself, an IPv6 address's /64. */
export function addressBucket(address: string): string {
  const ip = parse(address);
  if (!ip) return address;
  if (ip.kind() === 'ipv4') return ip.toString();
  const network = ipaddr.IPv6.networkAddressFromCIDR(`${ip.toString()}/64`);
  return `${network.toString()}/64`;
}

export interface RateLimitOptions {
  perMinute: number;
  /** TRUSTED_PROXIES: peers whose X-Forwarded-For is believed. */
  trustedProxies?: Cidr[];
  /**
   * The request's credential (a bearer key, a session cookie), if it carries one: `id` names its bucket, `isValid`
   * is asked for a request from an address whose own bucket is empty, and after a request no route authenticated
   * (the routes that do set the principal).
   */
  credential: (c: Context) => { id: string; isValid: () => Promise<boolean> } | undefined;
  now?: () => number;
}

export function rateLimit(opts: RateLimitOptions): MiddlewareHandler<AppEnv> {
  const { perMinute, trustedProxies = [] } = opts;
  const now = opts.now ?? (() => Date.now());
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

  // A lookup that fails (PostgreSQL down) counts as not valid: the address pays, as for any unproven caller.
  const isValid = (credential: { isValid: () => Promise<boolean> }) => credential.isValid().catch(() => false);

  return async (c, next) => {
    const credential = opts.credential(c);
    const byAddress = refill(`addr:${addressBucket(clientAddress(c, trustedProxies))}`);
    let bucket = byAddress;
    if (credential) {
      // The address's budget is spent (by anonymous calls or refused keys): only a credential that is valid
      // goes on, on its own budget.
      if (byAddress.tokens < 1 && !(await isValid(credential))) return refuse(c, byAddress);
      bucket = refill(`cred:${createHash('sha256').update(credential.id).digest('hex').slice(0, 32)}`);
    }
    if (bucket.tokens < 1) return refuse(c, bucket);
    bucket.tokens -= 1;
    c.header('RateLimit-Limit', String(perMinute));
    c.header('RateLimit-Remaining', String(Math.floor(bucket.tokens)));
    await next();
    // A credential no route accepted — refused (401), or sent where nothing checks it (/ready, /health) and not
    // valid — was a stranger's call after all: the address pays for it too.
    // The answer waits for that lookup a second at most (it may wait on a PostgreSQL that is down), so that with
    // PostgreSQL up the charge is made before the caller can send the next request; past that it lands behind.
    if (credential && !c.get('principal')) {
      const charge = () => (byAddress.tokens = Math.max(0, byAddress.tokens - 1));
      if (c.res.status === 401) charge();
      else
        await waitAtMost(
          isValid(credential).then((valid) => valid || charge()),
          CHARGE_WAIT_MS,
        );
    }
  };
}
