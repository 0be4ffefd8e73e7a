/**
 * Trust: endpoint URLs are encrypted at rest. A Slack webhook's path is a credential, and every backup of
 * opsflow's database is a copy of its tables: after an endpoint is made, re-pointed and delivered to, no row of any
 * table in opsflow's schema holds its path or token in the clear — only the origin and a fingerprint, which are
 * what a read key is shown. A URL written in plaintext (by an earlier release, during a rolling upgrade) gets its
 * origin and fingerprint from the database, is delivered to, and is encrypted by the next worker start. A URL no
 * key opens fails its attempt for good naming the cause, and `secrets:forget` finds it and disables the endpoint
 * until its URL is set again. Real PostgreSQL (a database of this file's own), worker, Temporal, receiver.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretBox, encryptStoredSecrets, PLAINTEXT_GRACE_MS, plaintextHeldUntil } from '../../lib/secret-box.js';
import { forgetLostSecrets } from '../../lib/webhooks/lost-secrets.js';
import { apiCaller } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { respond, startReceiver, type Receiver } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const db = `opsflow_sec_urls_${process.pid}`;
const fingerprintOf = (url: string) => `sha256:${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;

describe('security: endpoint URLs at rest', () => {
  let h: Harness;
  let workers: TestWorkers;
  let receiver: Receiver;
  let api: ReturnType<typeof apiCaller>;
  /** The box opsflow's processes make from the harness's key. */
  const box = () => createSecretBox({ current: h.config.encryption.current, previous: h.config.encryption.previous });

  beforeAll(async () => {
    await freshStateDatabase(db);
    receiver = await startReceiver(respond(200));
    h = await createHarness({ DATABASE_URL: databaseUrlOf(db), WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    workers = await startWorkers(h, ['webhooks']);
    api = apiCaller(() => testApp(h));
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await receiver?.close();
    await dropDatabase(db);
  });

  /** The tables of opsflow's schema whose rows, as text, contain `needle`. */
  async function tablesHolding(needle: string): Promise<string[]> {
    const tables = await h.pool.query<{ t: string }>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'opsflow' AND table_type = 'BASE TABLE'",
    );
    const holding: string[] = [];
    for (const { t } of tables.rows) {
      const found = await h.pool.query(`SELECT 1 FROM opsflow.${t} x WHERE x::text LIKE $1 LIMIT 1`, [`%${needle}%`]);
      if (found.rowCount) holding.push(t);
    }
    return holding;
  }
  const deliveredTo = (path: string) =>
    waitFor(
      () => receiver.requests.filter((r) => r.path === path).length,
      (n) => n >= 1,
      20_000,
    );

  it('made, re-pointed and delivered to: no table holds the path or the token, only origin and fingerprint', async () => {
    const first = `${receiver.url}/services/T01/B01/firstToken?token=firstQuery`;
    const second = `${receiver.url}/services/T02/B02/secondToken`;
    const made = await api<{ id: string; url: string; urlFingerprint: string }>('POST', '/v1/endpoints', {
      url: first,
      eventTypes: ['rest.check'],
    });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ url: first, urlFingerprint: fingerprintOf(first) });
    const id = made.body.id;
    const patched = await api<{ url: string; urlFingerprint: string }>('PATCH', `/v1/endpoints/${id}`, { url: second });
    expect(patched.body).toMatchObject({ url: second, urlFingerprint: fingerprintOf(second) });
    expect((await api('POST', '/v1/events', { type: 'rest.check', payload: { n: 1 } })).status).toBe(202);
    await deliveredTo('/services/T02/B02/secondToken');

    for (const secret of ['firstToken', 'firstQuery', 'secondToken', '/services/']) {
      expect(await tablesHolding(secret), secret).toEqual([]);
    }
    const { rows } = await h.pool.query<{ url: string; url_origin: string; url_fingerprint: string }>(
      'SELECT url, url_origin, url_fingerprint FROM opsflow.webhook_endpoints WHERE id = $1',
      [id],
    );
    expect(rows[0]!.url).toMatch(/^v1\.[0-9a-f]{8}\./);
    expect(rows[0]).toMatchObject({ url_origin: receiver.url, url_fingerprint: fingerprintOf(second) });
    // The API still answers the URL to a key that may change it.
    expect((await api<{ url: string }>('GET', `/v1/endpoints/${id}`)).body.url).toBe(second);
  });

  it('a plaintext URL from an earlier release: origin and fingerprint from the database, delivered, then encrypted', async () => {
    const url = `${receiver.url}/legacy/plainToken`;
    await h.pool.query(
      `INSERT INTO opsflow.webhook_endpoints (id, url, event_types, secret, retry_schedule_ms, timeout_ms)
       VALUES ('ep_legacy', $1, '{legacy.check}', $2, '{1000}', 5000)`,
      [url, box().encrypt('whsec_bGVnYWN5IHNlY3JldCBmb3IgdGhlIHRlc3Q=')],
    );
    const row = await h.pool.query<{ url_origin: string; url_fingerprint: string }>(
      "SELECT url_origin, url_fingerprint FROM opsflow.webhook_endpoints WHERE id = 'ep_legacy'",
    );
    expect(row.rows[0]).toEqual({ url_origin: receiver.url, url_fingerprint: fingerprintOf(url) });
    expect((await api<{ url: string }>('GET', '/v1/endpoints/ep_legacy')).body.url).toBe(url);
    expect((await api('POST', '/v1/events', { type: 'legacy.check', payload: { n: 1 } })).status).toBe(202);
    await deliveredTo('/legacy/plainToken');

    // What every worker's start runs. Within 15 minutes of the migration a process of the previous release may
    // still be delivering (a rolling upgrade), and it reads the URL as plaintext: it stays so, and the worker says
    // when it will encrypt it.
    expect(await encryptStoredSecrets(h.pool, box())).toBe(0);
    expect(await tablesHolding('plainToken')).toEqual(['webhook_endpoints']);
    const until = await plaintextHeldUntil(h.pool);
    expect(until!.getTime() - Date.now()).toBeGreaterThan(PLAINTEXT_GRACE_MS - 120_000);
    // Once settled, it is encrypted; origin and fingerprint stay.
    expect(await plaintextHeldUntil(h.pool, PLAINTEXT_GRACE_MS, new Date(until!.getTime() + 1))).toBeUndefined();
    expect(await encryptStoredSecrets(h.pool, box(), undefined, { plaintextGraceMs: 0 })).toBe(1);
    expect(await tablesHolding('plainToken')).toEqual([]);
    const after = await h.pool.query<{ url: string; url_origin: string; url_fingerprint: string }>(
      "SELECT url, url_origin, url_fingerprint FROM opsflow.webhook_endpoints WHERE id = 'ep_legacy'",
    );
    expect(after.rows[0]!.url).toMatch(/^v1\./);
    expect(after.rows[0]).toMatchObject({ url_origin: receiver.url, url_fingerprint: fingerprintOf(url) });
    expect((await api<{ url: string }>('GET', '/v1/endpoints/ep_legacy')).body.url).toBe(url);
  });

  it('a URL no key opens: the attempt fails for good naming it, secrets:forget disables the endpoint until it is set', async () => {
    const ep = await api<{ id: string }>('POST', '/v1/endpoints', {
      url: `${receiver.url}/lost/url`,
      eventTypes: ['lost.url'],
    });
    const stranger = createSecretBox({ current: randomBytes(32), previous: [] });
    await h.pool.query('UPDATE opsflow.webhook_endpoints SET url = $2 WHERE id = $1', [
      ep.body.id,
      stranger.encrypt(`${receiver.url}/lost/url`),
    ]);
    // Shown by its origin (kept in the clear), never an error.
    const shown = await api<{ url: string }>('GET', `/v1/endpoints/${ep.body.id}`);
    expect(shown.status).toBe(200);
    expect(shown.body.url).toBe(`${receiver.url}/…`);

    const published = await api<{ deliveries: { id: string }[] }>('POST', '/v1/events', {
      type: 'lost.url',
      payload: { n: 1 },
    });
    const delivery = published.body.deliveries[0]!.id;
    await waitFor(
      async () =>
        (
          await h.pool.query<{ status: string }>('SELECT status FROM opsflow.webhook_deliveries WHERE id = $1', [
            delivery,
          ])
        ).rows[0]?.status,
      (s) => s === 'dead_lettered',
      20_000,
    );
    const attempts = await h.pool.query<{ outcome: string; error: string }>(
      'SELECT outcome, error FROM opsflow.webhook_attempts WHERE delivery_id = $1',
      [delivery],
    );
    expect(attempts.rows).toHaveLength(1);
    expect(attempts.rows[0]!.outcome).toBe('permanent');
    expect(attempts.rows[0]!.error).toMatch(/cannot decrypt the endpoint's URL: encrypted under key \w+/);
    expect(receiver.requests.filter((r) => r.path === '/lost/url')).toHaveLength(0);

    const listed = await forgetLostSecrets(h.pool, box(), { apply: false });
    expect(listed).toContainEqual({ endpointId: ep.body.id, host: new URL(receiver.url).host, lost: ['url'] });
    const applied = await forgetLostSecrets(h.pool, box(), { apply: true });
    expect(applied.find((f) => f.endpointId === ep.body.id)).toMatchObject({ lost: ['url'], disabled: true });
    const disabled = await api<{ enabled: boolean; disabledReason: string }>('GET', `/v1/endpoints/${ep.body.id}`);
    expect(disabled.body).toMatchObject({ enabled: false });
    expect(disabled.body.disabledReason).toMatch(/URL lost/);

    // Set again and enabled: a redrive delivers.
    const fixed = await api('PATCH', `/v1/endpoints/${ep.body.id}`, { url: `${receiver.url}/lost/url`, enabled: true });
    expect(fixed.status).toBe(200);
    expect((await api('POST', `/v1/deliveries/${delivery}/retry`)).status).toBe(202);
    await deliveredTo('/lost/url');
  });
});
