/**
 * Secrets: every secret variable can come from a file (`NAME_FILE`), webhook signing secrets are stored
 * encrypted (AES-256-GCM under OPSFLOW_ENCRYPTION_KEY, a previous key still decrypting during a rotation),
 * and the database holds no plaintext secret — rows from before are encrypted at worker start.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, SECRET_VARIABLES } from '../lib/config.js';
import { createSecretBox, encryptStoredSecrets, parseEncryptionKey, SecretBoxError } from '../lib/secret-box.js';
import { createHarness, testApp, TEST_ENCRYPTION_KEY, type Harness } from './helpers/harness.js';
import { authHeaders } from './helpers/api.js';

const key = () => randomBytes(32);

describe('*_FILE for every secret variable', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-secrets-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const samples: Record<(typeof SECRET_VARIABLES)[number], string> = {
    OPSFLOW_API_KEYS: 'file-key-0123456789abcdef-0123456789',
    OPSFLOW_ENCRYPTION_KEY: key().toString('base64'),
    OPSFLOW_ENCRYPTION_KEY_PREVIOUS: key().toString('hex'),
    METRICS_TOKEN: 'file-metrics-token-0123456789',
    PROMETHEUS_BEARER_TOKEN: 'file-prometheus-token',
    DATABASE_URL: 'postgres://app:file-pw@db.internal:5432/app',
    BACKUP_DATABASE_URLS: 'postgres://app:file-pw@db.internal:5432/app',
    VERIFY_DATABASE_URL: 'postgres://app:file-pw@verify.internal:5432/postgres',
    RESTORE_SERVERS: 'dr=postgres://app:file-pw@dr.internal:5432/postgres',
    SMTP_URL: 'smtps://mailer:file-pw@smtp.example.com:465',
    TEMPORAL_API_KEY: 'file-temporal-api-key',
    AWS_ACCESS_KEY_ID: 'AKIAFILE',
    AWS_SECRET_ACCESS_KEY: 'file-secret-access-key',
    BACKUP_ENCRYPTION_KEY: key().toString('base64'),
    BACKUP_ENCRYPTION_KEY_PREVIOUS: key().toString('hex'),
  };

  it('reads each one from NAME_FILE (one trailing newline dropped), as if it were set', async () => {
    for (const name of SECRET_VARIABLES) {
      const file = path.join(dir, name);
      await writeFile(file, `${samples[name]}\n`, { mode: 0o600 });
      const extra: Record<string, string> =
        name === 'AWS_ACCESS_KEY_ID'
          ? { AWS_SECRET_ACCESS_KEY: 'x' }
          : name === 'AWS_SECRET_ACCESS_KEY'
            ? { AWS_ACCESS_KEY_ID: 'x' }
            : {};
      const fromFile = loadConfig({ OPSFLOW_DATA_DIR: dir, S3_BUCKET: 'bucket', ...extra, [`${name}_FILE`]: file });
      const fromEnv = loadConfig({ OPSFLOW_DATA_DIR: dir, S3_BUCKET: 'bucket', ...extra, [name]: samples[name] });
      expect(fromFile, name).toEqual(fromEnv);
    }
    const c = loadConfig({
      OPSFLOW_DATA_DIR: dir,
      S3_BUCKET: 'bucket',
      AWS_ACCESS_KEY_ID_FILE: path.join(dir, 'AWS_ACCESS_KEY_ID'),
      AWS_SECRET_ACCESS_KEY_FILE: path.join(dir, 'AWS_SECRET_ACCESS_KEY'),
    });
    expect(c.backups.s3?.credentials).toEqual({ accessKeyId: 'AKIAFILE', secretAccessKey: 'file-secret-access-key' });
  });

  it('both set is an error naming both; an unreadable file is an error naming it; no value is echoed', async () => {
    const file = path.join(dir, 'METRICS_TOKEN');
    await writeFile(file, 'from-a-file-0123456789');
    expect(() => loadConfig({ METRICS_TOKEN: 'from-the-env-0123456789', METRICS_TOKEN_FILE: file })).toThrow(
      /METRICS_TOKEN and METRICS_TOKEN_FILE are both set/,
    );
    expect(() => loadConfig({ SMTP_URL_FILE: path.join(dir, 'missing') })).toThrow(
      /SMTP_URL_FILE: cannot read .*ENOENT/,
    );
    try {
      loadConfig({ OPSFLOW_ENCRYPTION_KEY: 'too-short-secret-value' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/OPSFLOW_ENCRYPTION_KEY: must be 32 bytes/);
      expect((err as Error).message).not.toContain('too-short-secret-value');
    }
  });
});

describe('the secret box', () => {
  it('encrypts with a fresh IV, decrypts, and refuses altered values and unknown keys', () => {
    const k = key();
    const box = createSecretBox({ current: k, previous: [] });
    const a = box.encrypt('whsec_abc');
    expect(a).toMatch(/^v1\.[0-9a-f]{8}\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(a).not.toContain('whsec_abc');
    expect(box.encrypt('whsec_abc')).not.toBe(a);
    expect(box.decrypt(a)).toBe('whsec_abc');
    const parts = a.split('.');
    const ct = Buffer.from(parts[3]!, 'base64url');
    ct[0]! ^= 1;
    parts[3] = ct.toString('base64url');
    expect(() => box.decrypt(parts.join('.'))).toThrow(/does not authenticate/);
    expect(() => createSecretBox({ current: key(), previous: [] }).decrypt(a)).toThrow(
      /neither OPSFLOW_ENCRYPTION_KEY/,
    );
    expect(() => createSecretBox({ current: undefined, previous: [] })).toThrow(SecretBoxError);
  });

  it('rotation: the previous key still decrypts; the new one encrypts', () => {
    const old = key();
    const next = key();
    const stored = createSecretBox({ current: old, previous: [] }).encrypt('whsec_old');
    const rotated = createSecretBox({ current: next, previous: [old] });
    expect(rotated.decrypt(stored)).toBe('whsec_old');
    expect(rotated.isCurrent(stored)).toBe(false);
    expect(rotated.isCurrent(rotated.encrypt('x'))).toBe(true);
  });

  it('takes keys as base64 or hex, 32 bytes only', () => {
    const k = key();
    expect(parseEncryptionKey(k.toString('base64'))).toEqual(k);
    expect(parseEncryptionKey(k.toString('hex'))).toEqual(k);
    expect(parseEncryptionKey(randomBytes(16).toString('base64'))).toBeUndefined();
    expect(parseEncryptionKey('not a key at all')).toBeUndefined();
  });
});

describe('webhook secrets at rest', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
  });
  afterAll(async () => {
    await h.pool.query(
      `UPDATE opsflow.webhook_endpoints SET enabled = false, deleted_at = now()
       WHERE url = 'http://127.0.0.1:9/hooks/at-rest' OR id LIKE 'ep_legacy_%'`,
    );
    await h.close();
  });
  const auth = authHeaders();

  it('an endpoint made or rotated through the API stores its secret encrypted', async () => {
    const app = testApp(h);
    const res = await app.request('/v1/endpoints', {
      method: 'POST',
      headers: auth,
      // Subscribed to a type of its own: the run's other tests publish events, and this endpoint must not
      // receive them.
      body: JSON.stringify({ url: 'http://127.0.0.1:9/hooks/at-rest', eventTypes: ['test.secrets-at-rest'] }),
    });
    expect(res.status).toBe(201);
    const { id, secret } = (await res.json()) as { id: string; secret: string };
    const rotated = (await (
      await app.request(`/v1/endpoints/${id}/rotate-secret`, { method: 'POST', headers: auth })
    ).json()) as { secret: string };
    const { rows } = await h.pool.query<{ secret: string; previous_secret: string }>(
      'SELECT secret, previous_secret FROM opsflow.webhook_endpoints WHERE id = $1',
      [id],
    );
    const box = createSecretBox(h.config.encryption);
    expect(rows[0]!.secret).not.toContain(rotated.secret);
    expect(box.decrypt(rows[0]!.secret)).toBe(rotated.secret);
    expect(box.decrypt(rows[0]!.previous_secret)).toBe(secret);
  });

  it('plaintext rows from before, and rows under a previous key, are rewritten under the current key', async () => {
    const old = key();
    await h.pool.query(
      `INSERT INTO opsflow.webhook_endpoints (id, url, secret, previous_secret, retry_schedule_ms, timeout_ms, enabled, event_types)
       VALUES ('ep_legacy_plain', 'https://example.com/a', 'whsec_legacyplaintext', NULL, '{1000}', 5000, false, '{test.legacy}'),
              ('ep_legacy_oldkey', 'https://example.com/b', $1, 'whsec_legacyprevious', '{1000}', 5000, false, '{test.legacy}')`,
      [createSecretBox({ current: old, previous: [] }).encrypt('whsec_underoldkey')],
    );
    const box = createSecretBox({ current: h.config.encryption.current, previous: [old] });
    expect(await encryptStoredSecrets(h.pool, box)).toBeGreaterThanOrEqual(2);
    expect(await encryptStoredSecrets(h.pool, box)).toBe(0); // idempotent
    const { rows } = await h.pool.query<{ id: string; secret: string; previous_secret: string | null }>(
      `SELECT id, secret, previous_secret FROM opsflow.webhook_endpoints WHERE id LIKE 'ep_legacy_%' ORDER BY id`,
    );
    const current = createSecretBox({ current: Buffer.from(TEST_ENCRYPTION_KEY, 'base64'), previous: [] });
    expect(
      rows.map((r) => [r.id, current.decrypt(r.secret), r.previous_secret && current.decrypt(r.previous_secret)]),
    ).toEqual([
      ['ep_legacy_oldkey', 'whsec_underoldkey', 'whsec_legacyprevious'],
      ['ep_legacy_plain', 'whsec_legacyplaintext', null],
    ]);
    // The database holds no plaintext webhook secret at all.
    const plain = await h.pool.query(
      `SELECT id FROM opsflow.webhook_endpoints WHERE secret NOT LIKE 'v1.%' OR previous_secret NOT LIKE 'v1.%'`,
    );
    expect(plain.rows).toEqual([]);
  });
});
