/**
 * Backups with real pg_dump/pg_restore, a real PostgreSQL source, a local store and a real S3-compatible
 * server (s3rver), on the real Temporal server.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { defaultPayloadConverter } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBackupActivities, scratchName } from '../../activities/backups/index.js';
import { backupKeyId } from '../../lib/backups/encryption.js';
import { quoteIdent } from '../../lib/db.js';
import { BACKUP_WORKFLOW, backupWorkflowId, type BackupResult } from '../../lib/backups/contract.js';

import { planRetention } from '../../workflows/backups/retention.js';
import type { backupDatabase } from '../../workflows/backups/workflow.js';
import {
  createHarness,
  startWorkers,
  testApp,
  type Harness,
  workerDeps,
  type TestWorkers,
} from '../helpers/harness.js';
import { bearer } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, queryIn, recreateDatabase, withAdmin } from '../helpers/databases.js';
import { saveHistory } from '../helpers/histories.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.js';
import { uiView } from '../helpers/ui.js';
import { waitFor } from '../helpers/wait.js';

describe('scratch database names (pure)', () => {
  it('are unique per run even when a long database name fills them, valid, and stable', () => {
    const db = 'a_database_name_of_fifty_characters_for_this_test';
    const a = scratchName('opsflow_verify_', `backup:${db}:2026-11-28T02-00-00-000Z`);
    const b = scratchName('opsflow_verify_', `backup:${db}:2026-11-28T03-00-00-000Z`);
    expect(a).not.toBe(b); // the old names cut both to the same 63 bytes
    for (const n of [a, b]) {
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(63);
      expect(n).toMatch(/^opsflow_verify_backup_a_database_name[a-z0-9_]+_[0-9a-f]{10}$/);
    }
    expect(scratchName('opsflow_verify_', 'backup:app:1')).toBe(scratchName('opsflow_verify_', 'backup:app:1'));
  });
});

describe('retention (pure)', () => {
  const day = (n: number, verified = true) => ({
    id: `b${n}`,
    startedAt: new Date(Date.UTC(2026, 10, 30 - n, 2)).toISOString(),
    verified,
  });
  it.each([
    [
      'keeps the newest N daily',
      [0, 1, 2, 3, 4].map((n) => day(n)),
      { daily: 3, weekly: 0, monthly: 0 },
      ['b0', 'b1', 'b2'],
      ['b3', 'b4'],
    ],
    [
      'never deletes the newest verified, even with a zero policy',
      [day(0), day(1)],
      { daily: 0, weekly: 0, monthly: 0 },
      ['b0'],
      ['b1'],
    ],
    [
      'an unverified backup is never a kept one; newer failed ones are left for investigation',
      [day(0, false), day(1), day(2, false), day(3)],
      { daily: 1, weekly: 0, monthly: 0 },
      ['b1'],
      ['b2', 'b3'],
    ],
    [
      'weekly keeps one per ISO week beyond the dailies',
      Array.from({ length: 21 }, (_, n) => day(n)),
      { daily: 2, weekly: 3, monthly: 0 },
      // 2026-11-30 is a Monday: b0 is its ISO week, b1–b7 the week before, b8–b14 the one before that.
      ['b0', 'b1', 'b8'],
      Array.from({ length: 21 }, (_, n) => `b${n}`).filter((id) => !['b0', 'b1', 'b8'].includes(id)),
    ],
    [
      'nothing verified: nothing is deleted',
      [day(0, false), day(1, false)],
      { daily: 1, weekly: 0, monthly: 0 },
      [],
      [],
    ],
  ])('%s', (_name, backups, policy, keep, del) => {
    const plan = planRetention(backups, policy);
    expect(plan.keep).toEqual(keep);
    expect(plan.delete.sort()).toEqual([...del].sort());
  });
});

/** Runs an activity function inside an activity context (heartbeats, cancellation), outside a worker. */
function inActivity<R>(env: MockActivityEnvironment, fn: () => Promise<R>): Promise<R> {
  return env.run<[], R, () => Promise<R>>(fn);
}

describe('backup workflow', () => {
  let h: Harness;
  let workers: TestWorkers;
  let s3: S3Server;
  let smtp: SmtpCapture;
  const source = `opsflow_bk_src_${process.pid}`;
  const admin = () => new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  const sourceUrl = () => inject('adminDatabaseUrl').replace(/\/postgres$/, `/${source}`);

  beforeAll(async () => {
    const a = admin();
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${quoteIdent(source)} WITH (FORCE)`);
    await a.query(`CREATE DATABASE ${quoteIdent(source)}`);
    await a.end();
    const src = new pg.Client({ connectionString: sourceUrl() });
    await src.connect();
    await src.query(`CREATE TABLE customers (id serial PRIMARY KEY, name text);
      CREATE SCHEMA billing; CREATE TABLE billing.invoices (id serial PRIMARY KEY, customer int, amount numeric);
      CREATE TABLE empty_one (x int);
      INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 500) g;
      INSERT INTO billing.invoices (customer, amount) SELECT g % 500, g * 1.5 FROM generate_series(1, 2000) g;`);
    await src.end();
    s3 = await startS3();
    smtp = await startSmtpCapture();
    h = await createHarness({
      BACKUP_DATABASE_URLS: sourceUrl(),
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: s3.endpoint,
      S3_PREFIX: 'backups/',
      SMTP_URL: smtp.url,
      OPS_EMAIL: 'ops@example.com',
    });
    workers = await startWorkers(h, ['backups']);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await s3?.close();
    await smtp?.close();
    const a = admin();
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${quoteIdent(source)} WITH (FORCE)`);
    await a.end();
  });

  async function runBackup(): Promise<BackupResult> {
    return h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(source, new Date()),
      args: [{ database: source }],
    });
  }

  it('dumps to the local directory and S3, verifies by a real restore, catalogs and reports', async () => {
    const result = await runBackup();
    expect(result.status).toBe('verified');
    expect(result.locations.map((l) => l.store)).toEqual(['local', 's3']);
    expect(result.verification?.tables).toEqual([
      { table: 'billing.invoices', expected: 2000, restored: 2000 },
      { table: 'public.customers', expected: 500, restored: 500 },
      { table: 'public.empty_one', expected: 0, restored: 0 },
    ]);
    const local = path.join(h.config.backups.dir, result.locations[0]!.key);
    expect((await stat(local)).size).toBe(result.sizeBytes);
    expect((await readdir(path.dirname(local))).filter((f) => f.includes('.partial'))).toEqual([]);

    const { rows } = await h.pool.query<{
      status: string;
      sha256: string;
      size_bytes: string;
      steps: Record<string, unknown>;
    }>('SELECT status, sha256, size_bytes, steps FROM opsflow.backups WHERE id = $1', [result.id]);
    expect(rows[0]).toMatchObject({ status: 'verified', sha256: result.sha256, size_bytes: String(result.sizeBytes) });
    expect(Object.keys(rows[0]!.steps)).toEqual(['dump', 'verify']);
    // The server's globals beside the dump, in both stores: roles (this database's owner among them), no passwords.
    const { rows: g } = await h.pool.query<{ globals: { key: string; sha256: string; sizeBytes: number } }>(
      'SELECT globals FROM opsflow.backups WHERE id = $1',
      [result.id],
    );
    expect(g[0]!.globals.key).toBe(result.locations[0]!.key.replace(/\.dump$/, '.globals.sql'));
    const globals = await readFile(path.join(h.config.backups.dir, g[0]!.globals.key), 'utf8');
    expect(globals).toContain('CREATE ROLE postgres;');
    expect(globals).not.toMatch(/PASSWORD/);
    expect(
      (await h.pool.query('SELECT encryption_key_id FROM opsflow.backups WHERE id = $1', [result.id])).rows,
    ).toEqual([{ encryption_key_id: null }]);
    expect(createHash('sha256').update(globals).digest('hex')).toBe(g[0]!.globals.sha256);

    // This run's scratch database only: other runs on the same server may be verifying at this moment.
    const scratch = await h.pool.query('SELECT datname FROM pg_database WHERE datname = $1', [
      scratchName('opsflow_verify_', result.id),
    ]);
    expect(scratch.rowCount).toBe(0);
    expect((await uiView(h.client, result.id)).details).toBe(`verified: ${result.sizeBytes} bytes, 3 tables, 2 stores`);
    const report = smtp.messages.find((m) => m.subject === `[opsflow] backup ${source}: verified`);
    expect(report?.text).toContain('billing.invoices');
  });

  it('retention deletes the superseded backup of the day from disk and from S3, recorded in the catalog', async () => {
    const first = await runBackup();
    const second = await runBackup();
    expect([first.status, second.status]).toEqual(['verified', 'verified']);
    expect(second.deleted).toEqual(
      expect.arrayContaining([
        { backupId: first.id, store: 'local' },
        { backupId: first.id, store: 's3' },
      ]),
    );
    const s3Client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true });
    const exists = {
      local: (key: string) =>
        stat(path.join(h.config.backups.dir, key)).then(
          () => true,
          () => false,
        ),
      s3: (key: string) =>
        s3Client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${h.config.backups.s3!.prefix}${key}` })).then(
          () => true,
          () => false,
        ),
    };
    // The newest is kept in both stores (the paths are right), the one it supersedes is gone from both.
    for (const copy of second.locations) expect(await exists[copy.store](copy.key), copy.key).toBe(true);
    for (const copy of first.locations) expect(await exists[copy.store](copy.key), copy.key).toBe(false);
    // Each backup's globals went with it (and the kept one's stay).
    const globalsOf = async (id: string) =>
      (await h.pool.query<{ globals: { key: string } }>('SELECT globals FROM opsflow.backups WHERE id = $1', [id]))
        .rows[0]!.globals.key;
    for (const store of ['local', 's3'] as const) {
      expect(await exists[store](await globalsOf(second.id)), `${store} globals kept`).toBe(true);
      expect(await exists[store](await globalsOf(first.id)), `${store} globals deleted`).toBe(false);
    }
    const { rows } = await h.pool.query<{ deleted_from: string[] }>(
      'SELECT deleted_from FROM opsflow.backups WHERE id = $1',
      [first.id],
    );
    expect([...rows[0]!.deleted_from].sort()).toEqual(['local', 's3']);
  });

  it('promotion re-checks the target: one written to while the restore ran is not replaced', async () => {
    const acts = createBackupActivities(workerDeps(h));
    const target = `${source}_restore_promote`;
    const staging = `${target}_rtest`;
    const a = admin();
    await a.connect();
    try {
      for (const db of [target, staging]) {
        await a.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`);
        await a.query(`CREATE DATABASE ${quoteIdent(db)}`);
      }
      // Empty when the restore checked it; then someone creates a table in it.
      const t = new pg.Client({ connectionString: sourceUrl().replace(/\/[^/]+$/, `/${target}`) });
      await t.connect();
      await t.query('CREATE TABLE written_meanwhile (x int); INSERT INTO written_meanwhile VALUES (1)');
      await t.end();
      const promote = acts.promoteRestoredDatabase({ database: source, from: staging, to: target, overwrite: false });
      await expect(promote).rejects.toThrow(/written to while the restore ran.*nothing was replaced/);
      const left = await a.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY ($1)', [
        [target, staging],
      ]);
      expect(left.rows.map((r) => r.datname)).toEqual([target]); // the staging copy is gone, the target kept
      const t2 = new pg.Client({ connectionString: sourceUrl().replace(/\/[^/]+$/, `/${target}`) });
      await t2.connect();
      expect((await t2.query('SELECT x FROM written_meanwhile')).rows).toEqual([{ x: 1 }]);
      await t2.end();
      // With overwrite (or from a run started before the re-check) it is replaced, as asked.
      await a.query(`CREATE DATABASE ${quoteIdent(staging)}`);
      await acts.promoteRestoredDatabase({ database: source, from: staging, to: target, overwrite: true });
      const after = await a.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY ($1)', [
        [target, staging],
      ]);
      expect(after.rows.map((r) => r.datname)).toEqual([target]);
    } finally {
      for (const db of [target, staging]) await a.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`);
      await a.end();
    }
  });

  it('a corrupted or truncated stored copy fails verification', async () => {
    const env = new MockActivityEnvironment();
    const acts = createBackupActivities(workerDeps(h));
    const runId = `backup:${source}:manual-${Date.now()}`;
    const dump = await inActivity(env, () =>
      acts.dumpToStores({
        runId,
        database: source,
        key: `${source}/corrupt-${Date.now()}.dump`,
      }),
    );
    const file = path.join(h.config.backups.dir, dump.locations[0]!.key);
    const original = await readFile(file);
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
    await writeFile(file, flipped);
    const bad = await inActivity(env, () =>
      acts.verifyBackup({
        runId,
        ...dump,
      }),
    );
    expect(bad.ok).toBe(false);
    expect(bad.reason).toMatch(/local copy differs/);

    await writeFile(file, original.subarray(0, original.length - 100));
    const truncated = await inActivity(env, () =>
      acts.verifyBackup({
        runId,
        ...dump,
      }),
    );
    expect(truncated).toMatchObject({ ok: false, reason: expect.stringMatching(/local copy differs/) as string });

    await writeFile(file, original);
    expect(
      (
        await inActivity(env, () =>
          acts.verifyBackup({
            runId,
            ...dump,
          }),
        )
      ).ok,
    ).toBe(true);
  });

  it('rows inserted during the dump do not break verification (counts come from the same snapshot)', async () => {
    const writer = new pg.Client({ connectionString: sourceUrl() });
    await writer.connect();
    let stop = false;
    const inserting = (async () => {
      while (!stop) await writer.query(`INSERT INTO customers (name) VALUES ('late')`);
    })();
    try {
      const result = await runBackup();
      expect(result.status).toBe('verified');
    } finally {
      stop = true;
      await inserting;
      await writer.end();
    }
  });

  it('BACKUP_STORES=s3: no local copy; verification restores the S3 copy; retention works on S3 alone', async () => {
    const s3Only = await createHarness({
      BACKUP_DATABASE_URLS: sourceUrl(),
      BACKUP_STORES: 's3',
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: s3.endpoint,
      S3_PREFIX: 's3-only/',
    });
    const s3Workers = await startWorkers(s3Only, ['backups']);
    try {
      const run = () =>
        s3Only.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
          taskQueue: s3Only.queues.backups,
          workflowId: backupWorkflowId(source, new Date()),
          args: [{ database: source }],
        });
      const first = await run();
      expect(first.status, first.reason).toBe('verified');
      expect(first.locations).toEqual([{ store: 's3', key: expect.stringContaining(source) as unknown }]);
      expect(first.verification?.tables.every((t) => t.restored === t.expected)).toBe(true);
      // Nothing on local disk: not the dump, not a partial file.
      expect(await readdir(path.join(s3Only.config.backups.dir, source)).catch(() => [])).toEqual([]);
      expect((await stat(path.join(s3.dir, s3.bucket)).catch(() => null))?.isDirectory()).toBe(true);
      // The day's second backup supersedes the first, in S3 only.
      const second = await run();
      expect(second.status).toBe('verified');
      expect(second.deleted).toEqual([{ backupId: first.id, store: 's3' }]);
    } finally {
      await s3Workers.stop();
      await s3Only.close();
    }
  });

  it('BACKUP_ENCRYPTION_KEY: every copy stored encrypted, verified and restored through the key; a rotated key still opens it; an unknown one is named', async () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const harness = (env: Record<string, string>) =>
      createHarness({
        BACKUP_DATABASE_URLS: sourceUrl(),
        S3_BUCKET: s3.bucket,
        S3_ENDPOINT: s3.endpoint,
        S3_PREFIX: 'encrypted/',
        ...env,
      });
    const enc = await harness({ BACKUP_ENCRYPTION_KEY: k1.toString('base64') });
    const encWorkers = await startWorkers(enc, ['backups']);
    let backup: BackupResult;
    try {
      backup = await enc.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
        taskQueue: enc.queues.backups,
        workflowId: backupWorkflowId(source, new Date()),
        args: [{ database: source }],
      });
      expect(backup.status, backup.reason).toBe('verified');
      expect(backup.verification?.tables.every((t) => t.restored === t.expected)).toBe(true);
      // On disk and in S3 the same encrypted bytes (one sha256 for both, checked by verification); no archive
      // pg_restore can read without the key.
      const stored = await readFile(path.join(enc.config.backups.dir, backup.locations[0]!.key));
      expect(stored.subarray(0, 4).toString()).toBe('OFBE');
      expect(stored.subarray(5, 9)).toEqual(backupKeyId(k1));
      const globals = await readFile(
        path.join(enc.config.backups.dir, backup.locations[0]!.key.replace(/\.dump$/, '.globals.sql')),
      );
      expect(globals.subarray(0, 4).toString()).toBe('OFBE');
      expect(globals.includes(Buffer.from('CREATE ROLE'))).toBe(false);
      // The catalogue names the key, so an operator knows which backups still need an old one.
      const { rows } = await enc.pool.query<{ encryption_key_id: string | null }>(
        'SELECT encryption_key_id FROM opsflow.backups WHERE id = $1',
        [backup.id],
      );
      expect(rows[0]!.encryption_key_id).toBe(backupKeyId(k1).toString('hex'));
      expect(backup.locations.map((l) => l.store)).toEqual(['local', 's3']);
      const tried = await new Promise<string>((resolve) =>
        execFile('pg_restore', ['--list', path.join(enc.config.backups.dir, backup.locations[0]!.key)], (err) =>
          resolve(err ? 'refused' : 'read'),
        ),
      );
      expect(tried).toBe('refused');
    } finally {
      await encWorkers.stop();
      await enc.close();
    }

    // Rotated: the new key encrypts, the previous one still opens the old copy — a drill restores it.
    const rotated = await harness({
      BACKUP_ENCRYPTION_KEY: k2.toString('base64'),
      BACKUP_ENCRYPTION_KEY_PREVIOUS: k1.toString('hex'),
    });
    const restoreActivities = createBackupActivities(workerDeps(rotated));
    const env = new MockActivityEnvironment();
    const opened = await inActivity(env, () =>
      restoreActivities.restoreAndCompare({
        server: 'verify',
        dbName: scratchName('opsflow_drill_', `${backup.id}-rotated`),
        location: backup.locations.find((l) => l.store === 's3')!,
        sha256: backup.sha256!,
        sizeBytes: backup.sizeBytes!,
        expected: Object.fromEntries(backup.verification!.tables.map((t) => [t.table, t.expected])),
        keep: false,
      }),
    );
    expect(opened).toMatchObject({ ok: true });
    await rotated.close();

    // The key dropped: the copy is refused, naming the key it needs.
    const lost = await harness({ BACKUP_ENCRYPTION_KEY: k2.toString('base64') });
    const lostActivities = createBackupActivities(workerDeps(lost));
    const refused = await inActivity(env, () =>
      lostActivities.restoreAndCompare({
        server: 'verify',
        dbName: scratchName('opsflow_drill_', `${backup.id}-lost`),
        // (Each harness has its own data directory: the S3 copy is the one both reach.)
        location: backup.locations.find((l) => l.store === 's3')!,
        sha256: backup.sha256!,
        sizeBytes: backup.sizeBytes!,
        expected: {},
        keep: false,
      }),
    );
    expect(refused.ok).toBe(false);
    expect(refused.reason).toContain(`encrypted under key ${backupKeyId(k1).toString('hex')}`);
    await lost.close();
  });

  it('S3 unreachable: the run fails with the reason, is catalogued failed, the report says so, nothing partial is left', async () => {
    const broken = await createHarness({
      BACKUP_DATABASE_URLS: sourceUrl(),
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: 'http://127.0.0.1:1',
      SMTP_URL: smtp.url,
      OPS_EMAIL: 'ops@example.com',
    });
    const brokenWorkers = await startWorkers(broken, ['backups']);
    try {
      const result = await broken.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
        taskQueue: broken.queues.backups,
        workflowId: backupWorkflowId(source, new Date()),
        args: [{ database: source, stepRetry: { maximumAttempts: 1 } }],
      });
      expect(result.status).toBe('failed');
      expect(result.reason).toMatch(/s3/i);
      const { rows } = await broken.pool.query<{ status: string; reason: string }>(
        'SELECT status, reason FROM opsflow.backups WHERE id = $1',
        [result.id],
      );
      expect(rows[0]?.status).toBe('failed');
      const files = await readdir(path.join(broken.config.backups.dir, source)).catch(() => []);
      expect(files.filter((f) => f.includes('.partial'))).toEqual([]);
      expect(smtp.messages.some((m) => m.subject === `[opsflow] backup ${source}: FAILED`)).toBe(true);
    } finally {
      await brokenWorkers.stop();
      await broken.close();
    }
  });

  it('S3 dying mid-upload ends the dump within a minute instead of stalling it (pg_dump killed, run failed)', async () => {
    // A dump bigger than what the upload buffers (two 8 MiB parts in flight), so pg_dump is still writing when
    // the store goes away; before, the paused pipe waited for a drain that never came while heartbeats went on.
    const big = `opsflow_bk_big_${process.pid}`;
    await recreateDatabase(big);
    await queryIn(
      big,
      `CREATE TABLE blobs (id int, body text);
       INSERT INTO blobs SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)
         || md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)
         FROM generate_series(1, 250000) g;`,
    );
    const dying = await startS3('opsflow-dying');
    // The store dies the way a network path does: a TCP proxy in front of it that, once cut, resets every
    // connection (in-flight part uploads included) and refuses new ones.
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = connect(Number(new URL(dying.endpoint).port), '127.0.0.1');
      for (const sock of [client, upstream]) {
        sockets.add(sock);
        sock.on('error', () => undefined);
        sock.on('close', () => sockets.delete(sock));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const cut = () => {
      proxy.close();
      for (const sock of sockets) sock.destroy();
    };
    const hd = await createHarness({
      BACKUP_DATABASE_URLS: databaseUrlOf(big),
      S3_BUCKET: dying.bucket,
      S3_ENDPOINT: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    });
    const hdWorkers = await startWorkers(hd, ['backups']);
    try {
      const id = backupWorkflowId(big, new Date());
      const handle = await hd.client.workflow.start<typeof backupDatabase>(BACKUP_WORKFLOW, {
        taskQueue: hd.queues.backups,
        workflowId: id,
        args: [{ database: big, stepRetry: { maximumAttempts: 1, heartbeatTimeoutMs: 30_000 } }],
      });
      // Mid-dump: the heartbeat reports bytes read from pg_dump.
      await waitFor(
        async () => {
          const beat = (await handle.describe()).raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
          return beat ? (defaultPayloadConverter.fromPayload<{ bytes?: number }>(beat).bytes ?? 0) : 0;
        },
        (bytes) => bytes > 1024 * 1024,
        60_000,
      );
      cut();
      const started = Date.now();
      const result = await handle.result();
      expect(result.status).toBe('failed');
      expect(result.reason).toMatch(/store s3/);
      expect(Date.now() - started).toBeLessThan(60_000);
      // No pg_dump of that database is left running.
      const dumps = await withAdmin((a) =>
        a.query(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pg_dump'`, [big]),
      );
      expect(dumps.rows).toEqual([]);
    } finally {
      await hdWorkers.stop();
      await hd.close();
      cut();
      await dying.close();
      await dropDatabase(big);
    }
  }, 180_000);

  it('through the API: 202 with the id, live progress, then the catalog row; unknown database is 422', async () => {
    const app = testApp(h);
    const auth = bearer();
    const bad = await app.request('/v1/backups', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ database: 'not_configured' }),
    });
    expect(bad.status).toBe(422);
    const res = await app.request('/v1/backups', { method: 'POST', headers: auth });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(id).toMatch(new RegExp(`^backup:${source}:`));
    await h.client.workflow.getHandle(id).result();
    const one = (await (await app.request(`/v1/backups/${encodeURIComponent(id)}`, { headers: auth })).json()) as {
      status: string;
      verification: { ok: boolean };
    };
    expect(one).toMatchObject({ status: 'verified', verification: { ok: true } });
    const list = (await (
      await app.request(`/v1/backups?database=${source}&status=verified`, { headers: auth })
    ).json()) as {
      items: { id: string }[];
    };
    expect(list.items.map((i) => i.id)).toContain(id);
    expect((await app.request('/v1/backups/backup:none:x', { headers: auth })).status).toBe(404);
    await saveHistory(id, 'backups/verified.json');
  });

  it('verification reads the archive’s table of contents first: an archive without a counted table, or no archive at all, fails naming why', async () => {
    // pg_dump stood in for by scripts: one leaves a table out of the archive, the other writes no archive; the
    // other tools pass through to the installed ones.
    const tools = async (dump: string) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'toc-pg-'));
      for (const tool of ['pg_restore', 'psql', 'pg_dumpall']) {
        await writeFile(path.join(dir, tool), `#!/bin/sh\nexec ${tool} "$@"\n`, { mode: 0o755 });
      }
      await writeFile(
        path.join(dir, 'pg_dump'),
        `#!/bin/sh\nif [ "$1" = "--version" ]; then exec pg_dump --version; fi\n${dump}\n`,
        { mode: 0o755 },
      );
      return dir;
    };
    for (const [dump, reason] of [
      [
        'exec pg_dump --exclude-table=billing.invoices "$@"',
        /^the archive lists no table billing\.invoices \(pg_restore --list\), which the snapshot counted/,
      ],
      ['cat /dev/null; echo "not an archive"', /^not a readable archive \(pg_restore --list\)/],
    ] as const) {
      const toc = await createHarness({ BACKUP_DATABASE_URLS: sourceUrl(), PG_BIN_DIR: await tools(dump) });
      const tocWorkers = await startWorkers(toc, ['backups']);
      try {
        const result = await toc.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
          taskQueue: toc.queues.backups,
          workflowId: backupWorkflowId(source, new Date()),
          args: [{ database: source }],
        });
        expect(result.status).toBe('failed');
        expect(result.reason).toMatch(reason);
        // Failed before a scratch database was made: nothing of this run on the server.
        const scratch = await toc.pool.query('SELECT 1 FROM pg_database WHERE datname = $1', [
          scratchName('opsflow_verify_', result.id),
        ]);
        expect(scratch.rowCount).toBe(0);
      } finally {
        await tocWorkers.stop();
        await toc.close();
      }
    }
  });

  it('a pg_dump older than the server is a clear error before anything is dumped, without retries', async () => {
    // The only PostgreSQL client installed here matches the server, so an old one is stood in for by a script
    // that answers `--version` the way pg_dump 9.6 does; it is never asked to dump.
    const bin = await mkdtemp(path.join(os.tmpdir(), 'old-pg-'));
    await writeFile(path.join(bin, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n', { mode: 0o755 });
    const old = await createHarness({ BACKUP_DATABASE_URLS: sourceUrl(), PG_BIN_DIR: bin });
    const oldWorkers = await startWorkers(old, ['backups']);
    try {
      const workflowId = backupWorkflowId(source, new Date());
      const result = await old.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
        taskQueue: old.queues.backups,
        workflowId,
        args: [{ database: source }],
      });
      expect(result.status).toBe('failed');
      expect(result.reason).toMatch(/^pg_dump 9 is older than the server \(1\d\): install PostgreSQL 1\d client tools/);
      expect(result.locations).toEqual([]);
      const history = await old.client.workflow.getHandle(workflowId).fetchHistory();
      const started = (history.events ?? []).flatMap((e) => e.activityTaskStartedEventAttributes ?? []);
      expect(started[0]?.attempt).toBe(1); // not retried: waiting would not make the client newer
      const stored = await readdir(path.join(old.config.backups.dir, source)).catch(() => []);
      expect(stored).toEqual([]);
      const { rows } = await old.pool.query<{ status: string }>('SELECT status FROM opsflow.backups WHERE id = $1', [
        workflowId,
      ]);
      expect(rows).toEqual([{ status: 'failed' }]);
    } finally {
      await oldWorkers.stop();
      await old.close();
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('an unknown database fails at once, without retries', async () => {
    const result = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId('nope', new Date()),
      args: [{ database: 'nope' }],
    });
    expect(result).toMatchObject({
      status: 'failed',
      reason: expect.stringContaining('not in BACKUP_DATABASE_URLS') as string,
    });
    await saveHistory(result.id, 'backups/failed.json');
  });
});
