/**
 * Trust: a key never outlives or outranks the key that made it. A minted key expires no later than its maker,
 * its maker is recorded, revoking a key revokes everything minted under it (listed in the answer), and no key
 * revokes one holding scopes it lacks. Real API (app.request), real PostgreSQL, real Temporal (the harness).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiCaller } from '../helpers/api.js';
import { createHarness, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';

interface Key {
  id: string;
  key: string;
  name: string;
  scopes: string[];
  createdByKey: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

describe('security: key hierarchy', () => {
  let h: Harness;
  const as = (key: string) => apiCaller(() => testApp(h), key);
  const admin = () => as(TEST_API_KEY);

  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function mint(by: string, body: Record<string, unknown>): Promise<Key> {
    const res = await as(by)<Key>('POST', '/v1/api-keys', body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  }
  const works = async (k: Key) => (await as(k.key)('GET', '/v1/deliveries?limit=1')).status;

  it("a minted key expires no later than its maker: unset takes the maker's expiry, later is 422, earlier is kept", async () => {
    const makerExpiry = new Date(Date.now() + 3600_000);
    const maker = await mint(TEST_API_KEY, {
      name: 'day-pass',
      scopes: ['keys:admin', 'read'],
      expiresAt: makerExpiry.toISOString(),
    });
    expect(maker.createdByKey).toMatch(/^env_/);

    const inherited = await mint(maker.key, { name: 'no-expiry-asked', scopes: ['read'] });
    expect(inherited.expiresAt).toBe(makerExpiry.toISOString());
    expect(inherited.createdByKey).toBe(maker.id);

    const later = await as(maker.key)<{ error: { code: string; message: string } }>('POST', '/v1/api-keys', {
      name: 'forever-admin',
      scopes: ['read'],
      expiresAt: new Date(makerExpiry.getTime() + 1000).toISOString(),
    });
    expect(later.status).toBe(422);
    expect(later.body.error.message).toContain('cannot outlive');

    const earlier = new Date(Date.now() + 600_000).toISOString();
    expect((await mint(maker.key, { name: 'shorter', scopes: ['read'], expiresAt: earlier })).expiresAt).toBe(earlier);
    // Nothing was stored for the refused one.
    const { rows } = await h.pool.query(`SELECT 1 FROM opsflow.api_keys WHERE name = 'forever-admin'`);
    expect(rows).toHaveLength(0);
  });

  it('revoking a key revokes what it minted and what those minted, lists them, and leaves the rest working', async () => {
    const a = await mint(TEST_API_KEY, { name: 'team-lead', scopes: ['keys:admin', 'read'] });
    const b = await mint(a.key, { name: 'ci', scopes: ['keys:admin', 'read'] });
    const c = await mint(b.key, { name: 'ci-reader', scopes: ['read'] });
    const d = await mint(a.key, { name: 'dashboard', scopes: ['read'] });
    const bystander = await mint(TEST_API_KEY, { name: 'bystander', scopes: ['read'] });
    for (const k of [a, b, c, d, bystander]) expect(await works(k)).toBe(200);

    const res = await admin()<Key & { alsoRevoked: Key[] }>('DELETE', `/v1/api-keys/${a.id}`);
    expect(res.status).toBe(200);
    expect(res.body.revokedAt).not.toBeNull();
    expect(res.body.alsoRevoked.map((k) => k.id).sort()).toEqual([b.id, c.id, d.id].sort());
    for (const k of [a, b, c, d]) expect(await works(k)).toBe(401);
    expect(await works(bystander)).toBe(200);

    // Revoking one of them again is the usual conflict.
    expect((await admin()('DELETE', `/v1/api-keys/${c.id}`)).status).toBe(409);
  });

  it('a key revokes only keys whose scopes it holds all of', async () => {
    const keyAdmin = await mint(TEST_API_KEY, { name: 'key-admin', scopes: ['keys:admin', 'read'] });
    const deployer = await mint(TEST_API_KEY, { name: 'deployer', scopes: ['read', 'deploys:run'] });
    const reader = await mint(TEST_API_KEY, { name: 'reader', scopes: ['read'] });

    const refused = await as(keyAdmin.key)<{ error: { code: string; message: string } }>(
      'DELETE',
      `/v1/api-keys/${deployer.id}`,
    );
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toContain('deploys:run');
    expect(await works(deployer)).toBe(200);

    expect((await as(keyAdmin.key)('DELETE', `/v1/api-keys/${reader.id}`)).status).toBe(200);
    expect(await works(reader)).toBe(401);
  });
});
