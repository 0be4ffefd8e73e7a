/**
 * The compose stack as an operator meets it on day one, through the published ports only: the API answers and
 * its system check is ok; a webhook reaches a receiver container signed so that the stock Standard Webhooks
 * verifier accepts it; a subscription's reminder reaches the SMTP container; an application database is backed
 * up into the S3 store, verified, and restored into a new database with the same row counts; deploys ship, roll
 * back, and wait for a second key in production; the Temporal UI lists opsflow's runs with their search
 * attributes; /metrics needs its token; the image's CLI prints `status`; the image runs as non-root and its
 * own health check passes. Booted by test/compose/run.sh (`npm run test:compose`).
 */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import {
  API,
  MAILPIT,
  TEMPORAL_UI,
  adminKey,
  api,
  appSql,
  compose,
  containers,
  docker,
  env,
  makeKey,
  peerUrl,
} from './stack.js';

interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  status: number;
}

let receiver: string;
let shopweb: string;
beforeAll(async () => {
  receiver = await peerUrl('opsflow-receiver');
  shopweb = await peerUrl('opsflow-shopweb');
});

const received = async (path: string): Promise<Received[]> =>
  ((await (await fetch(`${receiver}/requests`)).json()) as Received[]).filter((r) => r.path === path);
const serving = async (app: string) =>
  ((await (await fetch(`${shopweb}/${app}/health`)).json()) as { version: string }).version;

type Backup = {
  id: string;
  status: string;
  locations: { store: string; key: string }[];
  verification: { ok: boolean };
};
/** A backup of `database` started through the API and finished verified. */
async function verifiedBackup(database: string) {
  const started = await api<{ id: string }>('POST', '/v1/backups', { database });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  const done = await waitFor(
    () => api<Backup>('GET', `/v1/backups/${encodeURIComponent(started.body.id)}`),
    (r) => r.status === 200 && r.body.status !== 'running',
    180_000,
    1000,
  );
  expect(done.body.status, JSON.stringify(done.body)).toBe('verified');
  return done;
}
/** A restore of `backupId` into `target` (confirmed) started through the API and finished restored. */
async function restoredInto(backupId: string, target: string) {
  const restore = await api<{ id: string }>('POST', `/v1/backups/${encodeURIComponent(backupId)}/restore`, {
    targetDatabase: target,
    confirm: target,
  });
  expect(restore.status, JSON.stringify(restore.body)).toBe(202);
  const restored = await waitFor(
    () => api<{ status: string }>('GET', `/v1/restores/${encodeURIComponent(restore.body.id)}`),
    (r) => r.status === 200 && !['running', 'pending'].includes(r.body.status),
    180_000,
    1000,
  );
  expect(restored.body.status, JSON.stringify(restored.body)).toBe('restored');
}

describe('the compose stack, through its published ports', () => {
  it('is up: /health, /ready and the system check are ok', async () => {
    expect((await fetch(`${API}/health`)).status).toBe(200);
    const ready = await fetch(`${API}/ready`);
    expect(ready.status, await ready.clone().text()).toBe(200);
    const check = await api<{ status: string; checks: { name: string; ok: boolean }[] }>('GET', '/v1/system-check');
    expect(check.status).toBe(200);
    expect(check.body.status, JSON.stringify(check.body)).toBe('ok');
    expect(check.body.checks.length).toBeGreaterThan(0);
    expect(check.body.checks.filter((c) => !c.ok)).toEqual([]);
    // Without a key: the uniform error envelope.
    const refused = await fetch(`${API}/v1/status`);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
  });

  it('delivers a webhook to a receiver container, signed so that the stock Standard Webhooks verifier accepts it', async () => {
    const path = `/ok/smoke-${randomBytes(3).toString('hex')}`;
    const type = 'smoke.hello';
    const ep = await api<{ id: string; secret: string }>('POST', '/v1/endpoints', {
      url: `http://receiver:8080${path}`,
      eventTypes: [type],
    });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);
    // A private destination outside WEBHOOK_ALLOWED_CIDRS (the stack's network) is refused before anything is sent.
    const outside = await api('POST', '/v1/endpoints', { url: 'http://10.1.2.3:8080/x', eventTypes: [type] });
    expect(outside.status).toBe(422);

    const sent = await api<{ eventId: string; deliveries: { id: string }[] }>('POST', '/v1/events', {
      type,
      payload: { order: 42 },
    });
    expect(sent.status).toBe(202);
    expect(sent.body.deliveries).toHaveLength(1);
    const [req] = await waitFor(
      () => received(path),
      (r) => r.length > 0,
      60_000,
      250,
    );
    const verified = new Webhook(ep.body.secret).verify(req!.body, req!.headers) as {
      type: string;
      data: unknown;
    };
    expect(verified).toMatchObject({ type, data: { order: 42 } });
    // A tampered body is refused by the same verifier.
    expect(() => new Webhook(ep.body.secret).verify(req!.body.replace('42', '43'), req!.headers)).toThrow();
    const delivery = await waitFor(
      () => api<{ status: string }>('GET', `/v1/deliveries/${encodeURIComponent(sent.body.deliveries[0]!.id)}`),
      (r) => r.body.status === 'delivered',
      30_000,
      250,
    );
    expect(delivery.status).toBe(200);
    expect(await received(path)).toHaveLength(1);
  });

  it("sends a subscription's reminder through the SMTP container", async () => {
    const email = `billing-${randomBytes(3).toString('hex')}@shop.example`;
    const id = `smoke-${randomBytes(3).toString('hex')}`;
    const res = await api('PUT', `/v1/subscriptions/${id}`, {
      tenantId: 'shop',
      email,
      plan: 'pro',
      expiresAt: new Date(Date.now() + 12 * 3600_000).toISOString(),
      sendAt: null,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const messages = await waitFor(
      async () =>
        (
          (await (await fetch(`${MAILPIT}/api/v1/search?query=${encodeURIComponent(`to:${email}`)}`)).json()) as {
            messages: { Subject: string; To: { Address: string }[] }[];
          }
        ).messages,
      (m) => m.length > 0,
      60_000,
      500,
    );
    expect(messages).toHaveLength(1);
    expect(messages[0]!.To[0]!.Address).toBe(email);
    const sub = await api<{ status: string; reminders: unknown[] }>('GET', `/v1/subscriptions/${id}`);
    expect(sub.body.status).toBe('active');
    // Bad input: the uniform envelope, nothing stored.
    const bad = await api<{ error: { code: string } }>('PUT', `/v1/subscriptions/${id}-bad`, { email: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_failed');
    expect((await api('GET', `/v1/subscriptions/${id}-bad`)).status).toBe(404);
  });

  let backupId: string;
  it('backs up the application database into the S3 store, verified, and restores it into a new database', async () => {
    await appSql(
      'CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, total numeric NOT NULL);' +
        'CREATE TABLE IF NOT EXISTS customers (id serial PRIMARY KEY, name text NOT NULL);' +
        'INSERT INTO orders (total) SELECT g FROM generate_series(1, 1234) g;' +
        "INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 56) g;",
    );
    const done = await verifiedBackup('shop');
    backupId = done.body.id;
    expect(done.body.verification.ok).toBe(true);
    const s3 = done.body.locations.find((l) => l.store === 's3');
    expect(s3, JSON.stringify(done.body.locations)).toBeDefined();
    // The object is in the S3 store's bucket (the store's own files, read in its container).
    const minio = (await containers('minio'))[0]!;
    const listing = await docker('exec', minio, 'sh', '-c', 'find /data/opsflow-backups -type f');
    expect(listing).toContain(s3!.key.split('/').at(-1));

    const refused = await api<{ error: { code: string } }>(
      'POST',
      `/v1/backups/${encodeURIComponent(backupId)}/restore`,
      { targetDatabase: 'shop_restore_smoke', confirm: 'shop_restore_smokex' },
    );
    expect(refused.status).toBe(422);
    // Temporal's own database is never a restore target, confirmed and with overwrite or not.
    const temporalDb = await api<{ error: { message: string } }>(
      'POST',
      `/v1/backups/${encodeURIComponent(backupId)}/restore`,
      { targetDatabase: 'temporal', confirm: 'temporal', overwrite: true },
    );
    expect(temporalDb.status).toBe(422);
    expect(temporalDb.body.error.message).toContain('never a restore target');
    await restoredInto(backupId, 'shop_restore_smoke');
    const counts = (db: string) => appSql('SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM customers)', db);
    expect(await counts('shop_restore_smoke')).toEqual(await counts('shop'));
    expect(await counts('shop_restore_smoke')).toEqual([['1234', '56']]);
  });

  it("backs up opsflow's own database as compose's backup role: not the superuser, and locked out of Temporal's", async () => {
    const pg = (await containers('postgres'))[0]!;
    const asSuperuser = async (sql: string, database = 'postgres') =>
      (await docker('exec', pg, 'psql', '-U', 'opsflow', '-d', database, '-AtqX', '-c', sql)).trim();
    /** psql over TCP as opsflow_backup with its password from .env: what it prints, or its error. */
    const asBackupRole = (sql: string, database = 'postgres') =>
      docker(
        ...['exec', '-e', `PGPASSWORD=${env.BACKUP_DB_PASSWORD}`, pg],
        ...['psql', '-h', '127.0.0.1', '-U', 'opsflow_backup', '-d', database, '-AtqX', '-c', sql],
      ).then(
        (out) => out.trim(),
        (err: Error & { stderr?: string }) => `ERROR ${err.stderr ?? err.message}`,
      );
    expect(
      await asSuperuser("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'opsflow_backup'"),
    ).toBe('f|t|f');
    expect(await asBackupRole('SELECT current_user')).toBe('opsflow_backup');
    // What a restore gone wrong (or a stolen worker) could try with this role is refused by PostgreSQL itself.
    expect(await asBackupRole('DROP DATABASE temporal')).toContain('must be owner of database temporal');
    expect(await asBackupRole('DROP DATABASE opsflow')).toContain('must be owner of database opsflow');
    expect(await asBackupRole('SELECT 1', 'temporal')).toContain('permission denied for database "temporal"');
    expect(await asBackupRole('SELECT 1', 'temporal_visibility')).toContain('permission denied');
    expect(await asBackupRole('ALTER ROLE opsflow_backup SUPERUSER')).toContain('must be superuser');

    // And it does its work: a dump of opsflow's database, verified, restored into a database it creates.
    const done = await verifiedBackup('opsflow');
    await restoredInto(done.body.id, 'opsflow_restore_smoke');
    const migrations = 'SELECT count(*) FROM opsflow.schema_migrations';
    expect(await asSuperuser(migrations, 'opsflow_restore_smoke')).toBe(await asSuperuser(migrations, 'opsflow'));
    expect(
      await asSuperuser("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'opsflow_restore_smoke'"),
    ).toBe('opsflow_backup');
  });

  it('status is ok once every database has a verified backup: no problems', async () => {
    const status = await waitFor(
      () => api<{ ok: boolean; problems: unknown[] }>('GET', '/v1/status'),
      (r) => r.status === 200 && r.body.ok,
      60_000,
      1000,
    );
    expect(status.body.problems).toEqual([]);
  });

  it('deploys to a target container: ships, rolls back a bad version, and production waits for a second key', async () => {
    const deployer = await makeKey(`ci-${randomBytes(2).toString('hex')}`, ['deployer']);
    const approver = await makeKey(`lead-${randomBytes(2).toString('hex')}`, ['approver']);
    const deploy = async (body: unknown) => {
      const res = await api<{ id: string }>('POST', '/v1/deploys', body, deployer.key);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return res.body.id;
    };
    const finished = (id: string, timeout = 120_000) =>
      waitFor(
        () => api<{ status: string; live?: { status: string } }>('GET', `/v1/deploys/${encodeURIComponent(id)}`),
        (r) =>
          r.status === 200 &&
          ['succeeded', 'rolled_back', 'failed', 'aborted', 'canceled', 'rejected'].includes(r.body.status),
        timeout,
        1000,
      );

    const good = await finished(await deploy({ target: 'shop-staging', version: '1.1.0' }));
    expect(good.body.status, JSON.stringify(good.body)).toBe('succeeded');
    expect(await serving('staging')).toBe('1.1.0');

    const bad = await finished(await deploy({ target: 'shop-staging', version: 'bad-1.2.0' }));
    expect(bad.body.status, JSON.stringify(bad.body)).toBe('rolled_back');
    expect(await serving('staging')).toBe('1.1.0');

    // Bad input: a version that would reach a shell is refused, nothing started.
    expect(
      (await api('POST', '/v1/deploys', { target: 'shop-staging', version: '1.0; rm -rf /' }, deployer.key)).status,
    ).toBe(422);

    const before = await serving('production');
    const prod = await deploy({ target: 'shop-production', version: '1.1.0' });
    await waitFor(
      () => api<{ live?: { status: string } }>('GET', `/v1/deploys/${encodeURIComponent(prod)}`),
      (r) => r.body.live?.status === 'awaiting_approval',
      60_000,
      500,
    );
    expect(await serving('production')).toBe(before);
    const self = await api('POST', `/v1/deploys/${encodeURIComponent(prod)}/approve`, {}, deployer.key);
    expect(self.status).toBe(403);
    const ok = await api('POST', `/v1/deploys/${encodeURIComponent(prod)}/approve`, { comment: 'go' }, approver.key);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const shipped = await finished(prod, 240_000);
    expect(shipped.body, JSON.stringify(shipped.body)).toMatchObject({ status: 'succeeded' });
    expect(await serving('production')).toBe('1.1.0');
  });

  it("the Temporal UI answers and lists opsflow's runs with their search attributes", async () => {
    const page = await fetch(`${TEMPORAL_UI}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    const query = encodeURIComponent('OpsKind = "deploy" AND DeployTarget = "shop-staging"');
    const listed = (await (
      await fetch(`${TEMPORAL_UI}/api/v1/namespaces/default/workflows?query=${query}`)
    ).json()) as {
      executions: { execution: { workflowId: string }; searchAttributes: { indexedFields: Record<string, unknown> } }[];
    };
    expect(listed.executions.length).toBeGreaterThanOrEqual(2);
    for (const run of listed.executions) {
      expect(run.execution.workflowId).toBe('deploy:shop-staging');
      expect(Object.keys(run.searchAttributes.indexedFields)).toEqual(
        expect.arrayContaining(['OpsKind', 'DeployTarget', 'DeployVersion', 'OpsStatus']),
      );
    }
  });

  it('/metrics answers with the token and refuses without it', async () => {
    const without = await fetch(`${API}/metrics`);
    expect(without.status).toBe(401);
    const wrong = await fetch(`${API}/metrics`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const ok = await fetch(`${API}/metrics`, { headers: { authorization: `Bearer ${env.METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/^opsflow_/m);
  });

  it('the image: the CLI inside it prints status, it runs as non-root, and its own health check passes', async () => {
    const out = await docker(
      'run',
      '--rm',
      '--pull',
      'never',
      '--network',
      'opsflow_default',
      '-e',
      'OPSFLOW_URL=http://api:3000',
      // The compose network is the operator's own: plain http to another host needs saying so.
      '-e',
      'OPSFLOW_INSECURE=1',
      '-e',
      `OPSFLOW_API_KEY=${adminKey}`,
      'opsflow:local',
      'opsflow',
      'status',
    );
    expect(out).toMatch(/ok/i);
    expect((await docker('image', 'inspect', '--format', '{{.Config.User}}', 'opsflow:local')).trim()).toBe('node');
    for (const service of ['api', 'worker']) {
      for (const id of await containers(service)) {
        expect((await docker('exec', id, 'id', '-u')).trim(), service).not.toBe('0');
      }
    }
    // The Dockerfile's HEALTHCHECK (compose declares its own per service), run in the API container.
    const test = JSON.parse(
      await docker('image', 'inspect', '--format', '{{json .Config.Healthcheck.Test}}', 'opsflow:local'),
    ) as string[];
    expect(test[0]).toBe('CMD-SHELL');
    const api = (await containers('api'))[0]!;
    await docker('exec', api, 'sh', '-c', test[1]!);
    expect((await compose('ps', '--format', '{{.Service}} {{.Health}}', 'api', 'worker')).trim().split('\n')).toEqual(
      expect.arrayContaining(['api healthy', 'worker healthy']),
    );
  });
});
