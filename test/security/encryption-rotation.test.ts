/**
 * Trust: rotating OPSFLOW_ENCRYPTION_KEY leaves nothing behind, and a value no key opens fails loudly. Every
 * encrypted column is in one list (ENCRYPTED_COLUMNS) and a rotation rewrites all of them — PagerDuty routing keys
 * included, which it used to skip, so dropping the previous key silently stopped PagerDuty; no encrypted value in
 * opsflow's schema sits outside that list. A delivery whose secret cannot be decrypted is recorded as a failed
 * attempt and dead-lettered naming the cause (it used to throw and retry forever, unrecorded); rotating the secret
 * then drops the unreadable one and a redrive delivers. Real PostgreSQL (a database of this file's own), real
 * worker and Temporal, a real receiver on loopback.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretBox, ENCRYPTED_COLUMNS, encryptStoredSecrets } from '../../lib/secret-box.js';
import { apiCaller } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { respond, startReceiver, type Receiver } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const db = `opsflow_sec_crypto_${process.pid}`;

describe('security: encryption key rotation', () => {
  let h: Harness;
  let workers: TestWorkers;
  let receiver: Receiver;
  let api: ReturnType<typeof apiCaller>;

  beforeAll(async () => {
    await freshStateDatabase(db);
    receiver = await startReceiver(respond(200));
    h = await createHarness({
      DATABASE_URL: databaseUrlOf(db),
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
    });
    api = apiCaller(() => testApp(h));
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await receiver?.close();
    await dropDatabase(db);
  });

  it('a rotation rewrites every encrypted column, routing keys included; nothing encrypted lies outside the list', async () => {
    const standard = await api<{ id: string; secret: string }>('POST', '/v1/endpoints', {
      url: `${receiver.url}/standard`,
      eventTypes: ['rotation.check'],
    });
    const pagerduty = await api<{ id: string }>('POST', '/v1/endpoints', {
      url: `${receiver.url}/pd`,
      format: 'pagerduty',
      routingKey: 'R0123456789abcdef0123456789abcde',
      eventTypes: ['backup.stale'],
    });
    expect([standard.status, pagerduty.status]).toEqual([201, 201]);
    expect((await api('POST', `/v1/endpoints/${standard.body.id}/rotate-secret`)).status).toBe(200);

    const old = h.config.encryption.current!;
    const next = randomBytes(32);
    const rotating = createSecretBox({ current: next, previous: [old] });
    expect(await encryptStoredSecrets(h.pool, rotating)).toBe(2);
    expect(await encryptStoredSecrets(h.pool, rotating)).toBe(0);

    // With the old key dropped, every value still opens.
    const onlyNew = createSecretBox({ current: next, previous: [] });
    const { rows } = await h.pool.query<{
      url: string;
      secret: string;
      previous_secret: string | null;
      routing_key: string | null;
    }>('SELECT url, secret, previous_secret, routing_key FROM opsflow.webhook_endpoints WHERE id = ANY ($1)', [
      [standard.body.id, pagerduty.body.id],
    ]);
    const opened = rows.flatMap((r) => [r.url, r.secret, r.previous_secret, r.routing_key]).filter((v) => v !== null);
    expect(opened).toHaveLength(6);
    expect(opened.map((v) => onlyNew.decrypt(v))).toEqual(
      expect.arrayContaining(['R0123456789abcdef0123456789abcde', `${receiver.url}/pd`, `${receiver.url}/standard`]),
    );

    // Every text column of opsflow's schema holding an encrypted value is in ENCRYPTED_COLUMNS.
    const columns = await h.pool.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns
       WHERE table_schema = 'opsflow' AND data_type = 'text'`,
    );
    const listed = new Set(
      ENCRYPTED_COLUMNS.flatMap(({ table, columns: cs }) => cs.map((c) => `${table.replace(/^opsflow\./, '')}.${c}`)),
    );
    const holding: string[] = [];
    for (const c of columns.rows) {
      const found = await h.pool.query(
        `SELECT 1 FROM opsflow.${c.table_name} WHERE ${c.column_name} ~ '^v1\\.[0-9a-f]{8}\\.' LIMIT 1`,
      );
      if (found.rowCount) holding.push(`${c.table_name}.${c.column_name}`);
    }
    expect(holding.sort()).toEqual([
      'webhook_endpoints.previous_secret',
      'webhook_endpoints.routing_key',
      'webhook_endpoints.secret',
      'webhook_endpoints.url',
    ]);
    for (const c of holding) expect(listed.has(c), c).toBe(true);
  });

  it('a secret no key opens: the attempt is recorded, the delivery dead-lettered naming the cause, nothing sent; a new secret and a redrive deliver', async () => {
    // The harness's key is current again (the previous test rewrote under another): start from a fresh endpoint.
    workers = await startWorkers(h, ['webhooks']);
    const ep = await api<{ id: string }>('POST', '/v1/endpoints', {
      url: `${receiver.url}/lost-key`,
      eventTypes: ['lost.key'],
    });
    // Its secret as another installation (a lost .data/encryption-key) would have stored it.
    const stranger = createSecretBox({ current: randomBytes(32), previous: [] });
    await h.pool.query('UPDATE opsflow.webhook_endpoints SET secret = $2 WHERE id = $1', [
      ep.body.id,
      stranger.encrypt('whsec_c29tZXRoaW5nIHNlY3JldCBhbmQgbG9uZw=='),
    ]);
    const before = receiver.requests.length;
    const published = await api<{ deliveries: { id: string }[] }>('POST', '/v1/events', {
      type: 'lost.key',
      payload: { n: 1 },
    });
    const delivery = published.body.deliveries[0]!.id;
    const dead = await waitFor(
      async () =>
        (
          await h.pool.query<{ status: string }>('SELECT status FROM opsflow.webhook_deliveries WHERE id = $1', [
            delivery,
          ])
        ).rows[0]?.status,
      (s) => s === 'dead_lettered',
      20_000,
    );
    expect(dead).toBe('dead_lettered');
    const attempts = await h.pool.query<{ outcome: string; error: string }>(
      'SELECT outcome, error FROM opsflow.webhook_attempts WHERE delivery_id = $1',
      [delivery],
    );
    expect(attempts.rows).toHaveLength(1);
    expect(attempts.rows[0]).toMatchObject({ outcome: 'permanent' });
    expect(attempts.rows[0]!.error).toMatch(/cannot decrypt the endpoint's signing secret: encrypted under key \w+/);
    const letters = await h.pool.query<{ reason: string }>(
      'SELECT reason FROM opsflow.dead_letters WHERE delivery_id = $1 AND resolved_at IS NULL',
      [delivery],
    );
    expect(letters.rows[0]?.reason).toMatch(/cannot decrypt/);
    expect(receiver.requests.filter((r) => r.path === '/lost-key').length).toBe(0);
    expect(receiver.requests.length).toBe(before);

    // A new secret drops the unreadable one (it would fail every attempt for a day); a redrive delivers.
    const rotated = await api<{ previousSecretExpiresAt: string | null }>(
      'POST',
      `/v1/endpoints/${ep.body.id}/rotate-secret`,
    );
    expect(rotated.body.previousSecretExpiresAt).toBeNull();
    expect((await api('POST', `/v1/deliveries/${delivery}/retry`)).status).toBe(202);
    await waitFor(
      () => receiver.requests.filter((r) => r.path === '/lost-key').length,
      (n) => n === 1,
      20_000,
    );
  });
});
