import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ConfigError, envSchema, loadConfig } from '../lib/config.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('has defaults that run on a laptop with nothing set', () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/opsflow');
    expect(c.temporal.address).toBeUndefined();
    expect(c.temporal.namespace).toBe('default');
    expect(c.timezone).toBe('UTC');
    expect(c.apiKeys).toBeUndefined();
    expect(c.systemCheck).toEqual({ urls: [], timeoutMs: 5000 });
    expect(c.taskQueuePrefix).toBe('opsflow');
  });

  it('parses lists, numbers and booleans', () => {
    const c = loadConfig({
      PORT: '8080',
      OPSFLOW_API_KEYS: ' key-a-0123456789abcdef-0123456789 , key-b-0123456789abcdef-0123456789 ,',
      HEALTH_CHECK_URLS: 'http://a.example/health,https://b.example/ready',
      TEMPORAL_TLS: 'true',
      TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      OPSFLOW_TIMEZONE: 'America/Sao_Paulo',
    });
    expect(c.port).toBe(8080);
    expect(c.apiKeys).toEqual(['key-a-0123456789abcdef-0123456789', 'key-b-0123456789abcdef-0123456789']);
    expect(c.systemCheck.urls).toHaveLength(2);
    expect(c.temporal.profile.tls).toEqual({ disabled: false });
    expect(c.timezone).toBe('America/Sao_Paulo');
    const w = loadConfig({ WEBHOOK_HTTPS_ONLY: 'yes', WEBHOOK_ALLOWED_PORTS: '443, 8443,' }).webhooks;
    expect([w.httpsOnly, w.allowedPorts]).toEqual([true, [443, 8443]]);
    expect([loadConfig({}).webhooks.httpsOnly, loadConfig({}).webhooks.allowedPorts]).toEqual([false, []]);
  });

  it('worker families: all by default, or the listed ones', () => {
    expect(loadConfig({}).workerFamilies).toEqual(['system', 'webhooks', 'subscriptions', 'backups', 'deploys']);
    expect(loadConfig({ OPSFLOW_WORKER_FAMILIES: 'backups, deploys' }).workerFamilies).toEqual(['backups', 'deploys']);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ PORT: '', SMTP_URL: '' }).port).toBe(3000);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://root@localhost/db' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'postgres://localhost' }, 'DATABASE_URL'],
    [{ OPSFLOW_TIMEZONE: 'Mars/Olympus' }, 'OPSFLOW_TIMEZONE'],
    [{ OPSFLOW_API_KEYS: 'short' }, 'OPSFLOW_API_KEYS'],
    // 16 characters passed before; a bootstrap key is an admin key: 32 or more, 12 or more different.
    [{ OPSFLOW_API_KEYS: 'correct-horse-battery' }, 'OPSFLOW_API_KEYS'],
    [{ OPSFLOW_API_KEYS: 'abababababababababababababababababab' }, 'OPSFLOW_API_KEYS'],
    [{ TEMPORAL_ADDRESS: 'http://localhost:7233' }, 'TEMPORAL_ADDRESS'],
    [{ TEMPORAL_TLS: 'maybe' }, 'TEMPORAL_TLS'],
    [{ SMTP_URL: 'http://mail' }, 'SMTP_URL'],
    [{ HEALTH_CHECK_URLS: 'http://ok.example,ftp://bad.example' }, 'HEALTH_CHECK_URLS'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
    [{ OPSFLOW_WORKER_FAMILIES: 'webhooks,mail' }, 'OPSFLOW_WORKER_FAMILIES'],
    [{ WEBHOOK_HTTPS_ONLY: 'always' }, 'WEBHOOK_HTTPS_ONLY'],
    [{ WEBHOOK_ALLOWED_PORTS: '443,https' }, 'WEBHOOK_ALLOWED_PORTS'],
    [{ WEBHOOK_ALLOWED_PORTS: '443,70000' }, 'WEBHOOK_ALLOWED_PORTS'],
  ])('rejects %o naming %s', (env, variable) => {
    const found = problems(env);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(new RegExp(`^${variable}\\b`));
  });

  it('reports every bad variable at once, in the error message too', () => {
    try {
      loadConfig({ PORT: 'x', OPSFLOW_TIMEZONE: 'Nowhere/Else' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toContain('PORT');
      expect((err as Error).message).toContain('OPSFLOW_TIMEZONE');
    }
  });

  it('BACKUP_STORES: local by default, S3 too with a bucket, or exactly the ones named', () => {
    expect(loadConfig({}).backups.stores).toEqual(['local']);
    expect(loadConfig({ S3_BUCKET: 'bkt' }).backups.stores).toEqual(['local', 's3']);
    expect(loadConfig({ S3_BUCKET: 'bkt', BACKUP_STORES: 's3' }).backups.stores).toEqual(['s3']);
    expect(loadConfig({ S3_BUCKET: 'bkt', BACKUP_STORES: 's3, local, s3' }).backups.stores).toEqual(['local', 's3']);
    expect(loadConfig({ S3_BUCKET: 'bkt', BACKUP_STORES: 'local' }).backups.stores).toEqual(['local']);
    expect(problems({ BACKUP_STORES: 's3' })).toEqual(['BACKUP_STORES: s3 needs S3_BUCKET']);
    expect(problems({ BACKUP_STORES: 'local,gcs' })).toEqual(['BACKUP_STORES: gcs is not a store (local, s3)']);
    expect(problems({ BACKUP_STORES: ' , ' })).toEqual(['BACKUP_STORES: name at least one store (local, s3)']);
  });

  it('requires the client certificate and key together', () => {
    expect(problems({ TEMPORAL_TLS_CLIENT_CERT_PATH: '/tmp/cert.pem' })[0]).toContain('TEMPORAL_TLS_CLIENT_KEY_PATH');
  });

  it('every variable is documented in the README', () => {
    const readme = readFileSync('README.md', 'utf8');
    const missing = Object.keys(envSchema.shape).filter((name) => !readme.includes(`| \`${name}\``));
    expect(missing).toEqual([]);
  });
});
