/**
 * Scoped API keys against the real stack: made through the API and shown once, stored as a digest, limited
 * to their scopes (403 naming the scope), unable to mint more power than they hold, refused by every API
 * process within 5 s of revocation or expiry.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../global-setup.js';
import { createHarness, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';
import { spawnApi, spawnEntry, type Child } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

interface MadeKey {
  id: string;
  key: string;
  name: string;
  scopes: string[];
}

describe('scoped API keys', () => {
  let h: Harness;
  let app: ReturnType<typeof testApp>;
  beforeAll(async () => {
    h = await createHarness();
    app = testApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  const call = (path: string, key: string, body?: unknown, method = body === undefined ? 'GET' : 'POST') =>
    app.request(path, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  async function makeKey(body: Record<string, unknown>, as = TEST_API_KEY): Promise<MadeKey> {
    const res = await call('/v1/api-keys', as, body);
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as MadeKey;
  }

  it('a key is shown once, listed without it, and stored only as its SHA-256 digest', async () => {
    const made = await makeKey({ name: 'billing-app', scopes: ['publisher'] });
    expect(made).toMatchObject({ name: 'billing-app', scopes: ['events:publish'] });
    expect((made as unknown as { createdBy: string }).createdBy).toMatch(/^env-1 \(env_[0-9a-f]{12}\)$/);
    expect(made.key).toMatch(/^opsk_[A-Za-z0-9_-]{40,}$/);
    const listed = await (await call('/v1/api-keys', TEST_API_KEY)).text();
    expect(listed).toContain(made.id);
    expect(listed).not.toContain(made.key);
    expect(JSON.parse(listed)).toMatchObject({ bootstrap: [{ name: 'env-1', source: 'env' }] });
    const { rows } = await h.pool.query<Record<string, unknown>>('SELECT * FROM opsflow.api_keys WHERE id = $1', [
      made.id,
    ]);
    expect(JSON.stringify(rows[0])).not.toContain(made.key);
    expect(rows[0]!.hash).toEqual(createHash('sha256').update(made.key).digest());
    // The key works for what it may do.
    const published = await call('/v1/events', made.key, { type: 'test.authority', payload: { ok: true } });
    expect(published.status).toBe(202);
  });

  it('a publisher key gets 403 naming the scope on deploys, approvals, restores, schedules, keys and reads', async () => {
    const publisher = await makeKey({ name: 'publisher', scopes: ['publisher'] });
    const attempts: [string, string, unknown, string][] = [
      ['POST', '/v1/deploys', { target: 'web', version: '1.0.0' }, 'deploys:run'],
      ['POST', '/v1/deploy-targets/web/rollback', { toVersion: '1.0.0', reason: 'x' }, 'deploys:run'],
      ['POST', '/v1/deploys/deploy:web:x/approve', {}, 'deploys:approve'],
      ['POST', '/v1/deploys/deploy:web:x/reject', { reason: 'no' }, 'deploys:approve'],
      ['POST', '/v1/backups/backup:x/restore', { targetDatabase: 'x', confirm: 'x' }, 'backups:restore'],
      ['POST', '/v1/backups', {}, 'backups:run'],
      ['POST', '/v1/schedules/opsflow:backup-nightly/pause', { note: 'x' }, 'schedules:write'],
      ['POST', '/v1/api-keys', { name: 'escalate', scopes: ['admin'] }, 'keys:admin'],
      ['GET', '/v1/api-keys', undefined, 'keys:admin'],
      ['DELETE', '/v1/api-keys/key_x', undefined, 'keys:admin'],
      ['GET', '/v1/deliveries', undefined, 'read'],
      ['POST', '/v1/endpoints', { url: 'https://example.com/hook' }, 'endpoints:write'],
      ['POST', '/v1/dead-letters/redrive', {}, 'deliveries:redrive'],
      ['PUT', '/v1/subscriptions/s1', { expiresAt: new Date().toISOString() }, 'subscriptions:write'],
    ];
    for (const [method, path, body, scope] of attempts) {
      const res = await call(path, publisher.key, body, method);
      expect(res.status, `${method} ${path}`).toBe(403);
      const envelope = (await res.json()) as { error: { code: string; message: string; details: unknown } };
      expect(envelope.error.code).toBe('forbidden');
      expect(envelope.error.message).toContain(scope);
      expect(envelope.error.details).toEqual({ requiredScope: scope });
    }
    // Nothing was started or written on the way.
    const deploys = await h.pool.query('SELECT 1 FROM opsflow.deploys WHERE requested_by_key = $1', [publisher.id]);
    expect(deploys.rows).toEqual([]);
    const keys = await h.pool.query(`SELECT 1 FROM opsflow.api_keys WHERE name = 'escalate'`);
    expect(keys.rows).toEqual([]);
  });

  it('presets expand to scopes; a key cannot grant scopes it does not hold; bad input is refused', async () => {
    const operator = await makeKey({ name: 'ops', scopes: ['operator', 'keys:admin'] });
    expect(operator.scopes).toEqual(
      expect.arrayContaining(['read', 'endpoints:write', 'schedules:write', 'backups:run', 'keys:admin']),
    );
    expect(operator.scopes).not.toContain('deploys:run');
    const escalate = await call('/v1/api-keys', operator.key, { name: 'more', scopes: ['deployer'] });
    expect(escalate.status).toBe(403);
    expect(((await escalate.json()) as { error: { message: string } }).error.message).toMatch(/deploys:run/);
    // Within its own scopes it may mint.
    expect((await makeKey({ name: 'reader', scopes: ['read'] }, operator.key)).scopes).toEqual(['read']);

    const bad = [
      { name: 'x', scopes: ['deploys:everything'] },
      { name: 'x', scopes: [] },
      { name: '', scopes: ['read'] },
      { name: 'x', scopes: ['read'], key: 'chosen-by-me' },
    ];
    for (const body of bad)
      expect((await call('/v1/api-keys', TEST_API_KEY, body)).status, JSON.stringify(body)).toBe(400);
    const past = await call('/v1/api-keys', TEST_API_KEY, {
      name: 'x',
      scopes: ['read'],
      expiresAt: new Date(Date.now() - 1000).toISOString(),
    });
    expect(past.status).toBe(422);
    const { rows } = await h.pool.query(`SELECT 1 FROM opsflow.api_keys WHERE name IN ('x', 'more')`);
    expect(rows).toEqual([]);
  });

  it('revoking: 404 for no such key, 409 twice or for a bootstrap key', async () => {
    const made = await makeKey({ name: 'short-lived', scopes: ['read'] });
    expect((await call(`/v1/api-keys/${made.id}`, TEST_API_KEY, undefined, 'DELETE')).status).toBe(200);
    expect((await call(`/v1/api-keys/${made.id}`, TEST_API_KEY, undefined, 'DELETE')).status).toBe(409);
    expect((await call('/v1/api-keys/key_nope', TEST_API_KEY, undefined, 'DELETE')).status).toBe(404);
    const listed = (await (await call('/v1/api-keys', TEST_API_KEY)).json()) as { bootstrap: { id: string }[] };
    const env = await call(`/v1/api-keys/${listed.bootstrap[0]!.id}`, TEST_API_KEY, undefined, 'DELETE');
    expect(env.status).toBe(409);
    const all = (await (await call('/v1/api-keys?includeRevoked=true', TEST_API_KEY)).json()) as {
      items: { id: string; revokedAt: string | null; revokedBy: string | null }[];
    };
    expect(all.items.find((k) => k.id === made.id)?.revokedBy).toMatch(/^env-1 /);
  });

  describe('with a second API process', () => {
    let api: Child;
    let url: string;
    beforeAll(async () => {
      ({ api, url } = await spawnApi(h));
    });
    afterAll(async () => {
      await api?.kill('SIGTERM');
    });

    const remote = (key: string) =>
      fetch(`${url}/v1/deliveries?limit=1`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);

    it('a revoked key stops working in every API process within 5 s', async () => {
      const made = await makeKey({ name: 'to-revoke', scopes: ['read'] });
      // Both processes have seen (and cached) the key.
      expect((await call('/v1/deliveries?limit=1', made.key)).status).toBe(200);
      expect(await remote(made.key)).toBe(200);
      const revokedAt = Date.now();
      expect((await call(`/v1/api-keys/${made.id}`, TEST_API_KEY, undefined, 'DELETE')).status).toBe(200);
      await waitFor(
        () => remote(made.key),
        (s) => s === 401,
        5000,
      );
      await waitFor(
        async () => (await call('/v1/deliveries?limit=1', made.key)).status,
        (s) => s === 401,
        5000,
      );
      expect(Date.now() - revokedAt).toBeLessThan(5000);
    });

    it('an expired key stops working in every API process', async () => {
      const expiresAt = new Date(Date.now() + 1500);
      const made = await makeKey({ name: 'expiring', scopes: ['read'], expiresAt: expiresAt.toISOString() });
      expect(await remote(made.key)).toBe(200);
      await waitFor(
        () => remote(made.key),
        (s) => s === 401,
        5000,
      );
      expect(Date.now()).toBeGreaterThanOrEqual(expiresAt.getTime());
      expect((await call('/v1/deliveries?limit=1', made.key)).status).toBe(401);
    });
  });
});

describe('/metrics exposure', () => {
  it('the API refuses to start on a non-loopback address without METRICS_TOKEN, and says why', async () => {
    const child = spawnEntry('api/server.ts', {
      HOST: '0.0.0.0',
      PORT: String(await freePort()),
      METRICS_TOKEN: '',
      OPSFLOW_API_KEYS: TEST_API_KEY,
      LOG_LEVEL: 'warn',
    });
    const code = await new Promise<number | null>((resolve) => child.process.once('exit', (c) => resolve(c)));
    expect(code).toBe(78);
    expect(child.output()).toMatch(/HOST is 0\.0\.0\.0.*set METRICS_TOKEN/);
  });
});
