/**
 * Trust: a stranger cannot spend your rate limit. A valid key is charged to its own bucket only, so an
 * unauthenticated flood from the same address (every client behind one load balancer) leaves keyed clients,
 * the console and the health checks' own address alone; X-Forwarded-For counts only from TRUSTED_PROXIES;
 * IPv6 clients are grouped by /64. Real HTTP server on a socket (the peer address is the socket's), real
 * PostgreSQL and Temporal (the harness).
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressBucket } from '../../api/rate-limit.js';
import { createHarness, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';

describe('security: rate-limit buckets', () => {
  let h: Harness;
  const servers: ServerType[] = [];

  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    for (const s of servers) s.close();
    await h?.close();
  });

  /** A real server for the app, with a limit of 5 a minute and the given trusted proxies. */
  async function listen(trustedProxies: string[]): Promise<string> {
    const app = testApp(h, { config: { ...h.config, rateLimitPerMinute: 5, trustedProxies } });
    const server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
    });
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const get = (url: string, headers: Record<string, string> = {}) =>
    fetch(url, { headers }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });

  it('an anonymous flood from one address leaves a valid key from that address alone; a wrong key is refused', async () => {
    const base = await listen([]);
    // The stranger: unauthenticated calls and made-up keys until the address is spent.
    for (let i = 0; i < 3; i++) expect(await get(`${base}/health`)).toBe(200);
    for (let i = 0; i < 2; i++)
      expect(await get(`${base}/v1/status`, { authorization: `Bearer made-up-${i}-xxxxxxxxxxxx` })).toBe(401);
    expect(await get(`${base}/health`)).toBe(429);
    expect(await get(`${base}/v1/status`, { authorization: 'Bearer made-up-again-xxxxxxxxxxxx' })).toBe(429);
    // The keyed client at the same address spends its own budget of 5, and only that.
    for (let i = 0; i < 5; i++) {
      expect(await get(`${base}/v1/deploy-targets`, { authorization: `Bearer ${TEST_API_KEY}` })).toBe(200);
    }
    expect(await get(`${base}/v1/deploy-targets`, { authorization: `Bearer ${TEST_API_KEY}` })).toBe(429);
  });

  it('a made-up key on a route that checks none is charged to the address too', async () => {
    const base = await listen([]);
    for (let i = 0; i < 5; i++)
      expect(await get(`${base}/health`, { authorization: `Bearer invented-${i}-xxxxxxxxxx` })).toBe(200);
    expect(await get(`${base}/health`)).toBe(429);
  });

  it('X-Forwarded-For counts only from a trusted proxy: then each client behind it has its own bucket', async () => {
    // Not trusted: the header is the client's to forge, so it changes nothing — one address, one bucket.
    const direct = await listen([]);
    for (let i = 0; i < 5; i++)
      expect(await get(`${direct}/health`, { 'x-forwarded-for': `203.0.113.${i}` })).toBe(200);
    expect(await get(`${direct}/health`, { 'x-forwarded-for': '203.0.113.99' })).toBe(429);

    // Behind a trusted proxy (this test's loopback peer): the client is the right-most untrusted hop.
    const proxied = await listen(['127.0.0.1/32', '10.0.0.0/8']);
    const flood = { 'x-forwarded-for': '198.51.100.7' };
    for (let i = 0; i < 5; i++) expect(await get(`${proxied}/health`, flood)).toBe(200);
    expect(await get(`${proxied}/health`, flood)).toBe(429);
    // Another client behind the same proxy, and the proxy's own health checks (no header), are unaffected.
    expect(await get(`${proxied}/health`, { 'x-forwarded-for': '198.51.100.8' })).toBe(200);
    expect(await get(`${proxied}/health`)).toBe(200);
    // A forged left-most entry does not move the flooding client to a fresh bucket: the right-most untrusted
    // hop (after the trusted 10.1.2.3) is still 198.51.100.7.
    expect(await get(`${proxied}/health`, { 'x-forwarded-for': '192.0.2.1, 198.51.100.7, 10.1.2.3' })).toBe(429);
  });

  it('IPv6 clients are grouped by /64; IPv4-mapped addresses count as IPv4', async () => {
    expect(addressBucket('2001:db8:1:2::1')).toBe(addressBucket('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(addressBucket('2001:db8:1:2::1')).not.toBe(addressBucket('2001:db8:1:3::1'));
    expect(addressBucket('::ffff:192.0.2.5')).toBe('192.0.2.5');

    const proxied = await listen(['127.0.0.1/32']);
    for (let i = 0; i < 5; i++) {
      expect(await get(`${proxied}/health`, { 'x-forwarded-for': `2001:db8:aa:bb::${i + 1}` })).toBe(200);
    }
    // Another address in the same /64: the same bucket, spent.
    expect(await get(`${proxied}/health`, { 'x-forwarded-for': '2001:db8:aa:bb:1234::1' })).toBe(429);
    expect(await get(`${proxied}/health`, { 'x-forwarded-for': '2001:db8:aa:bc::1' })).toBe(200);
  });
});
