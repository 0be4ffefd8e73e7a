/**
 * Restore, restore drill and freshness check, and backups surviving a killed pg_dump and a killed worker —
 * real PostgreSQL, real pg_dump/pg_restore, s3rver, the real Temporal server.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { createBackupActivities } from '../../activities/backups/index.js';
import { isOpsflowDatabase } from '../../lib/backups/databases.js';
import { parseMark } from '../../lib/backups/scratch.js';
import { loadConfig } from '../../lib/config.js';
import { quoteIdent } from '../../lib/db.js';
import {
  BACKUP_WORKFLOW,
  backupWorkflowId,
  FRESHNESS_WORKFLOW,
  RESTORE_DRILL_WORKFLOW,
  SCRATCH_JANITOR_WORKFLOW,
  type BackupResult,
  type RestoreResult,
  type VerificationResult,
} from '../../lib/backups/contract.js';
import type { backupDatabase } from '../../workflows/backups/workflow.js';
import type { scratchJanitor } from '../../workflows/backups/janitor.js';
import type { backupFreshnessCheck, backupRestoreDrill } from '../../workflows/backups/restore.js';
import {
  createHarness,
  startWorkers,
  testApp,
  type Harness,
  workerDeps,
  type TestWorkers,
} from '../helpers/harness.js';
import { internalKey } from '../../lib/webhooks/ops-events.js';
import { authHeaders } from '../helpers/api.js';
import { saveHistory } from '../helpers/histories.js';
import { harnessEnv, spawnEntry } from '../helpers/processes.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.js';
import { databaseUrlOf, dropDatabase, queryIn, withAdmin } from '../helpers/databases.js';
import { uiView } from '../helpers/ui.js';
import { waitFor } from '../helpers/wait.js';

const execFileAsync = promisify(execFile);
const commentOf = async (name: string) =>
  (
    await withAdmin((a) =>
      a.query<{ c: string | null }>(
        "SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1",
        [name],
      ),
    )
  ).rows[0]?.c ?? null;
const query = queryIn;
const dbExists = async (name: string) =>
  (await withAdmin((a) => a.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]))).rowCount === 1;

describe("opsflow's own database is recognised whatever the URL calls its server", () => {
  const config = (own: string) =>
    loadConfig({
      DATABASE_URL: own,
      BACKUP_DATABASE_URLS: 'postgres://u@127.0.0.1:5432/app',
      OPSFLOW_API_KEYS: 'restore-key-0123456789abcdef-0123456789',
    });
  it.each([
    ['postgres://u@localhost:5432/opsflow', 'opsflow', true], // localhost is 127.0.0.1: the old check said no
    ['postgres://u@127.0.0.1/opsflow', 'opsflow', true], // 5432 by default
    ['postgres://u@LOCALHOST:5432/opsflow', 'opsflow', true],
    ['postgres://u@localhost:5432/opsflow', 'app_copy', false],
    ['postgres://u@localhost:5433/opsflow', 'opsflow', false],
    ['postgres://u@db.invalid:5432/opsflow', 'opsflow', false],
  ])('%s, restore into %s → %s', async (own, target, expected) => {
    expect(await isOpsflowDatabase(config(own), { database: 'app' }, target)).toBe(expected);
  });
});

describe('restore, drill and freshness', () => {
  let h: Harness;
  let workers: TestWorkers;
  let s3: S3Server;
  let smtp: SmtpCapture;
  const source = `opsflow_rs_src_${process.pid}`;
  const target = `${source}_restore_1`;
  const auth = authHeaders();
  let backup: BackupResult;

  beforeAll(async () => {
    await dropDatabase(source);
    await withAdmin((a) => a.query(`CREATE DATABASE ${quoteIdent(source)}`));
    await query(
      source,
      `CREATE TABLE accounts (id serial PRIMARY KEY, email text UNIQUE);
       CREATE TABLE events (id bigserial PRIMARY KEY, account int REFERENCES accounts, at timestamptz DEFAULT now());
       INSERT INTO accounts (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 300) g;
       INSERT INTO events (account) SELECT 1 + g % 300 FROM generate_series(1, 1500) g;`,
    );
    s3 = await startS3();
    smtp = await startSmtpCapture();
    h = await createHarness({
      BACKUP_DATABASE_URLS: databaseUrlOf(source),
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: s3.endpoint,
      SMTP_URL: smtp.url,
      OPS_EMAIL: 'ops@example.com',
    });
    workers = await startWorkers(h, ['backups']);
    backup = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(source, new Date()),
      args: [{ database: source }],
    });
    expect(backup.status).toBe('verified');
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await s3?.close();
    await smtp?.close();
    await dropDatabase(source);
    await dropDatabase(target);
  });

  const restore = (id: string, body: unknown) =>
    testApp(h).request(`/v1/backups/${encodeURIComponent(id)}/restore`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify(body),
    });

  it('refuses a restore without the right confirmation, into a non-empty database, into opsflow, Temporal or the server itself, or off the allow-list', async () => {
    const missing = await restore(backup.id, { targetDatabase: target });
    expect(missing.status).toBe(400);
    const wrong = await restore(backup.id, { targetDatabase: target, confirm: `${target}x` });
    expect(wrong.status).toBe(422);
    expect(((await wrong.json()) as { error: { message: string } }).error.message).toMatch(/confirm/);
    const badName = await restore(backup.id, { targetDatabase: 'x; DROP DATABASE y', confirm: 'x; DROP DATABASE y' });
    expect(badName.status).toBe(400);
    const unknown = await restore('backup:nope:1', { targetDatabase: target, confirm: target });
    expect(unknown.status).toBe(404);
    const own = new URL(h.config.databaseUrl).pathname.slice(1);
    expect((await restore(backup.id, { targetDatabase: own, confirm: own })).status).toBe(422);
    // The server's own and Temporal's databases, even confirmed and with overwrite; a name off the source's
    // allow-list (by default the source itself and <source>_restore_*).
    for (const name of ['postgres', 'template1', 'temporal', 'temporal_visibility']) {
      const res = await restore(backup.id, { targetDatabase: name, confirm: name, overwrite: true });
      expect(res.status, name).toBe(422);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain('never a restore target');
    }
    const offList = await restore(backup.id, { targetDatabase: 'billing', confirm: 'billing', overwrite: true });
    expect(offList.status).toBe(422);
    expect(((await offList.json()) as { error: { message: string } }).error.message).toBe(
      `billing is not a restore target of ${source}: RESTORE_TARGETS allows ${source}, ${source}_restore_*`,
    );
    // The source itself is non-empty: refused without overwrite.
    const busy = await restore(backup.id, { targetDatabase: source, confirm: source });
    expect(busy.status).toBe(409);
    expect(((await busy.json()) as { error: { message: string } }).error.message).toMatch(/not empty/);
    expect(await dbExists(target)).toBe(false);
    const running = await h.pool.query('SELECT 1 FROM opsflow.restores WHERE target_database = $1', [target]);
    expect(running.rowCount).toBe(0);
  });

  it('restores into a new database, compares counts with the catalog, records and reports it', async () => {
    const res = await restore(backup.id, { targetDatabase: target, confirm: target });
    expect(res.status).toBe(202);
    const { id, workflowId } = (await res.json()) as { id: string; workflowId: string };
    // The id answers at once, before the run has written its row (from the run itself), never 404.
    const early = await testApp(h).request(`/v1/restores/${encodeURIComponent(id)}`, { headers: auth });
    expect(early.status).toBe(200);
    expect(['running', 'restored']).toContain(((await early.json()) as { status: string }).status);
    expect((await testApp(h).request(`/v1/restores/${encodeURIComponent(`${id}x`)}`, { headers: auth })).status).toBe(
      404,
    );
    const result = (await h.client.workflow.getHandle(workflowId).result()) as RestoreResult;
    expect(result).toMatchObject({ status: 'restored', backupId: backup.id, targetDatabase: target });
    expect(result.verification?.tables).toEqual([
      { table: 'public.accounts', expected: 300, restored: 300 },
      { table: 'public.events', expected: 1500, restored: 1500 },
    ]);
    expect(await query<{ n: string }>(target, 'SELECT count(*) AS n FROM accounts')).toEqual([{ n: '300' }]);
    const one = (await (
      await testApp(h).request(`/v1/restores/${encodeURIComponent(id)}`, { headers: auth })
    ).json()) as {
      status: string;
      verification: { ok: boolean };
    };
    expect(one).toMatchObject({ status: 'restored', verification: { ok: true } });
    const listed = (await (
      await testApp(h).request(`/v1/restores?kind=restore&database=${source}`, { headers: auth })
    ).json()) as { items: { id: string }[] };
    expect(listed.items.map((i) => i.id)).toEqual([id]);
    expect((await testApp(h).request('/v1/restores?kind=nope', { headers: auth })).status).toBe(400);
    const staged = await withAdmin((a) =>
      a.query('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${target}_r%`]),
    );
    expect(staged.rowCount).toBe(0);
    // The promoted database no longer carries the scratch mark its staging copy had: the janitor never drops it.
    expect(await commentOf(target)).toBeNull();
    expect(smtp.messages.some((m) => m.subject === `[opsflow] restore into ${target}: passed`)).toBe(true);
    expect(await uiView(h.client, workflowId)).toEqual({
      summary: `restore ${backup.id} into ${target}`,
      details: 'restored',
    });
    await saveHistory(workflowId, 'backups/restore.json');

    // Now the target is non-empty: refused without overwrite, replaced with it.
    await query(target, `INSERT INTO accounts (email) VALUES ('only-in-target@example.com')`);
    expect((await restore(backup.id, { targetDatabase: target, confirm: target })).status).toBe(409);
    const again = await restore(backup.id, { targetDatabase: target, confirm: target, overwrite: true });
    expect(again.status).toBe(202);
    const second = (await h.client.workflow
      .getHandle(((await again.json()) as { workflowId: string }).workflowId)
      .result()) as RestoreResult;
    expect(second.status).toBe('restored');
    expect(await query<{ n: string }>(target, 'SELECT count(*) AS n FROM accounts')).toEqual([{ n: '300' }]);
  });

  it('a restore whose copies are bad fails and leaves the target exactly as it was', async () => {
    const scratch = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(source, new Date()),
      args: [{ database: source }],
    });
    expect(scratch.status).toBe('verified');
    // Only the local copy is left (as if retention removed the S3 one), and it is corrupted.
    await h.pool.query(`UPDATE opsflow.backups SET deleted_from = '{s3}' WHERE id = $1`, [scratch.id]);
    const file = path.join(h.config.backups.dir, scratch.locations[0]!.key);
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await writeFile(file, bytes);
    await query(target, `INSERT INTO accounts (email) VALUES ('precious@example.com')`);

    const res = await restore(scratch.id, { targetDatabase: target, confirm: target, overwrite: true });
    expect(res.status).toBe(202);
    const result = (await h.client.workflow
      .getHandle(((await res.json()) as { workflowId: string }).workflowId)
      .result()) as RestoreResult;
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/local/);
    expect(await query<{ n: string }>(target, 'SELECT count(*) AS n FROM accounts')).toEqual([{ n: '301' }]);
    expect(smtp.messages.some((m) => m.subject === `[opsflow] restore into ${target}: FAILED`)).toBe(true);
  });

  it('the restore drill restores the newest backup from S3 into a scratch database and drops it', async () => {
    // Retention keeps one backup per day, so the earlier ones of today are gone from S3 by now.
    const newest = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(source, new Date()),
      args: [{ database: source }],
    });
    const results = await h.client.workflow.execute<typeof backupRestoreDrill>(RESTORE_DRILL_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: `backup-restore-drill-${Date.now()}`,
      args: [{ databases: [source, 'never_backed_up'] }],
    });
    expect([results[0]?.status, results[0]?.reason]).toEqual(['restored', undefined]);
    expect(results.map((r) => [r.database, r.status])).toEqual([
      [source, 'restored'],
      ['never_backed_up', 'failed'],
    ]);
    expect(results[0]).toMatchObject({ backupId: newest.id, from: { store: 's3' } });
    expect(results[1]!.reason).toMatch(/no verified backup/);
    expect(await dbExists(results[0]!.targetDatabase)).toBe(false);
    const mail = smtp.messages.find((m) => m.subject === '[opsflow] restore drill: FAILED');
    expect(mail?.text).toContain('public.events');
    const { rows } = await h.pool.query<{ status: string }>('SELECT status FROM opsflow.restores WHERE id = $1', [
      results[0]!.id,
    ]);
    expect(rows[0]?.status).toBe('restored');
    // Each result is an ops event for Slack / PagerDuty endpoints (README "Notifications").
    const events = await h.pool.query<{ type: string; body: string }>(
      'SELECT type, body FROM opsflow.webhook_events WHERE idempotency_key = ANY ($1) ORDER BY type',
      [results.map((r) => internalKey(`restore:${r.id}:${r.status}`))],
    );
    expect(events.rows.map((e) => e.type)).toEqual(['restore.failed', 'restore.succeeded']);
    expect(JSON.parse(events.rows[0]!.body)).toMatchObject({
      data: {
        kind: 'drill',
        database: 'never_backed_up',
        reason: expect.stringMatching(/no verified backup/) as string,
      },
    });
    await saveHistory(results[0]!.id.split(':')[0]!, 'backups/drill.json');
  });

  it('the scratch janitor drops marked leftovers older than a day with nobody connected, and nothing else', async () => {
    const pid = process.pid;
    const names = {
      old: `opsflow_verify_jan_old_${pid}`,
      busy: `opsflow_drill_jan_busy_${pid}`,
      young: `opsflow_verify_jan_young_${pid}`,
      legacy: `opsflow_drill_jan_legacy_${pid}`,
      user: `app_r0123456789_${pid}`,
      kept: `opsflow_verify_jan_kept_${pid}`,
    };
    for (const n of Object.values(names)) {
      await dropDatabase(n);
      await withAdmin((a) => a.query(`CREATE DATABASE ${quoteIdent(n)}`));
    }
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000).toISOString();
    const mark = (n: string, createdAt: string) =>
      withAdmin((a) =>
        a.query(
          `COMMENT ON DATABASE ${quoteIdent(n)} IS 'opsflow-scratch {"kind":"verify","run":"r-test","createdAt":"${createdAt}"}'`,
        ),
      );
    await mark(names.old, twoDaysAgo);
    await mark(names.busy, twoDaysAgo);
    await mark(names.young, new Date().toISOString());
    await withAdmin((a) => a.query(`COMMENT ON DATABASE ${quoteIdent(names.user)} IS 'customer data'`));
    // A verification's restore kept on purpose (keep): made by the real activity, it is marked with its run.
    const env = new MockActivityEnvironment();
    const acts = createBackupActivities(workerDeps(h));
    const restorable = (await acts.newestVerifiedBackup({ database: source }))!;
    const kept = await env.run<[], VerificationResult, () => Promise<VerificationResult>>(() =>
      acts.restoreAndCompare({
        server: 'verify',
        dbName: names.kept,
        location: restorable.locations[0]!,
        sha256: restorable.sha256,
        sizeBytes: restorable.sizeBytes,
        expected: restorable.tableCounts,
        keep: true,
      }),
    );
    expect(kept.ok).toBe(true);
    expect(parseMark(await commentOf(names.kept))).toMatchObject({ kind: 'restore-staging' });

    const busy = new pg.Client({ connectionString: databaseUrlOf(names.busy) });
    await busy.connect();
    const janitor = () =>
      h.client.workflow.execute<typeof scratchJanitor>(SCRATCH_JANITOR_WORKFLOW, {
        taskQueue: h.queues.backups,
        workflowId: `scratch-janitor-${Date.now()}`,
        args: [{}],
      });
    try {
      const [first] = await janitor();
      expect(first!.dropped).toContain(names.old);
      expect(first!.marked).toContain(names.legacy);
      const reasons = Object.fromEntries(first!.kept.map((k) => [k.name, k.reason]));
      expect(reasons[names.busy]).toMatch(/1 connection/);
      expect(reasons[names.young]).toMatch(/min ago by r-test/);
      expect(reasons[names.kept]).toMatch(/min ago/);
      expect(await dbExists(names.old)).toBe(false);
      for (const n of [names.busy, names.young, names.legacy, names.user, names.kept]) {
        expect(await dbExists(n), n).toBe(true);
      }
      expect(await commentOf(names.user)).toBe('customer data');
      expect(parseMark(await commentOf(names.legacy))).toMatchObject({ kind: 'first-seen' });
    } finally {
      await busy.end();
    }
    // A day later (the marks say so): the legacy one, first seen a day ago, and the one no longer in use go.
    await mark(names.legacy, twoDaysAgo);
    const [second] = await janitor();
    expect(second!.dropped.filter((n) => n.includes(`_jan_`)).sort()).toEqual([names.busy, names.legacy].sort());
    expect(await dbExists(names.user)).toBe(true);
    expect(await dbExists(names.young)).toBe(true);
    for (const n of Object.values(names)) await dropDatabase(n);
  });

  it('the freshness check alerts once when a database has no verified backup in 26 h', async () => {
    const check = () =>
      h.client.workflow.execute<typeof backupFreshnessCheck>(FRESHNESS_WORKFLOW, {
        taskQueue: h.queues.backups,
        workflowId: `backup-freshness-${Date.now()}`,
        args: [{}],
      });
    const fresh = await check();
    expect(fresh.databases).toEqual([{ database: source, lastVerifiedAt: expect.any(String) as string, stale: false }]);
    expect(fresh.alerted).toEqual([]);

    await h.pool.query(`UPDATE opsflow.backups SET finished_at = now() - interval '30 hours' WHERE database = $1`, [
      source,
    ]);
    const stale = await check();
    expect(stale.databases[0]!.stale).toBe(true);
    expect(stale.alerted).toEqual([source]);
    const alerts = () =>
      smtp.messages.filter((m) => m.subject?.includes('[ALERT] no verified backup') && m.subject.includes(source));
    await waitFor(
      () => alerts().length,
      (n) => n === 1,
      5000,
    );
    // Still stale an hour later: no second email the same day.
    expect((await check()).alerted).toEqual([]);
    expect(alerts()).toHaveLength(1);
    // And one backup.stale event (PagerDuty: a trigger of backup:<database>, resolved by the next verified one).
    const events = await h.pool.query<{ body: string }>(
      `SELECT body FROM opsflow.webhook_events WHERE type = 'backup.stale' AND idempotency_key LIKE $1`,
      [internalKey(`backup.stale:${source}:%`)],
    );
    expect(events.rows.map((e) => (JSON.parse(e.body) as { data: unknown }).data)).toEqual([
      {
        database: source,
        lastVerifiedAt: expect.any(String) as string,
        maxAgeHours: 26,
        workflowId: expect.stringMatching(/^backup-freshness-/) as string,
      },
    ]);
  });
});

describe('backups survive a killed pg_dump and a killed worker', () => {
  let s3: S3Server;
  const source = `opsflow_kill_src_${process.pid}`;

  beforeAll(async () => {
    await dropDatabase(source);
    await withAdmin((a) => a.query(`CREATE DATABASE ${quoteIdent(source)}`));
    // Big enough that pg_dump streams for a couple of seconds.
    await query(
      source,
      `CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload FROM generate_series(1, 700000) g`,
    );
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3?.close();
    await dropDatabase(source);
  });

  const harness = () =>
    createHarness({ BACKUP_DATABASE_URLS: databaseUrlOf(source), S3_BUCKET: s3.bucket, S3_ENDPOINT: s3.endpoint });

  /** Bytes the running dump has reported in its heartbeat (0 until the first one). */
  async function dumpedBytes(h: Harness, workflowId: string): Promise<number> {
    const d = await h.client.workflow.getHandle(workflowId).describe();
    const payload = d.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
    return payload ? (defaultPayloadConverter.fromPayload<{ bytes?: number }>(payload).bytes ?? 0) : 0;
  }

  async function noFinalObject(h: Harness, key: string): Promise<void> {
    const local = await readdir(path.join(h.config.backups.dir, source)).catch(() => [] as string[]);
    expect(local.filter((f) => f === path.basename(key))).toEqual([]);
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true });
    await expect(
      client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${h.config.backups.s3!.prefix}${key}` })),
    ).rejects.toMatchObject({ name: 'NotFound' });
  }

  async function attemptsOfDump(h: Harness, workflowId: string): Promise<number> {
    const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = new Map<string, string>();
    let attempts = 0;
    for (const e of history.events ?? []) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '');
      const started = e.activityTaskStartedEventAttributes;
      if (started && scheduled.get(String(started.scheduledEventId)) === 'dumpToStores')
        attempts = started.attempt ?? 0;
    }
    return attempts;
  }

  it('pg_dump killed mid-way: that attempt leaves nothing under a final name, the retry verifies', async () => {
    const h = await harness();
    const workers = await startWorkers(h, ['backups']);
    try {
      const id = backupWorkflowId(source, new Date());
      const handle = await h.client.workflow.start<typeof backupDatabase>(BACKUP_WORKFLOW, {
        taskQueue: h.queues.backups,
        workflowId: id,
        args: [{ database: source, stepRetry: { maximumAttempts: 2, initialIntervalMs: 500 } }],
      });
      await waitFor(
        () => dumpedBytes(h, id),
        (n) => n > 0,
        30_000,
      );
      await execFileAsync('pkill', ['-KILL', '-f', `pg_dump .*--snapshot=.*/${source}`]);
      const key = `${source}/${(await handle.describe()).startTime.toISOString().replace(/[:.]/g, '-')}.dump`;
      await noFinalObject(h, key);
      const result = await handle.result();
      expect(result.status).toBe('verified');
      expect(await attemptsOfDump(h, id)).toBe(2);
      const local = await readdir(path.join(h.config.backups.dir, source));
      expect(local.filter((f) => f.includes('.partial'))).toEqual([]);
    } finally {
      await workers.stop();
      await h.close();
    }
  }, 120_000);

  it('worker killed mid-upload: another worker finishes, one terminal state, nothing partial under a final name', async () => {
    const h = await harness();
    const child = spawnEntry(
      'worker/main.ts',
      harnessEnv(h, { BACKUP_DATABASE_URLS: databaseUrlOf(source), S3_BUCKET: s3.bucket, S3_ENDPOINT: s3.endpoint }),
    );
    try {
      const id = backupWorkflowId(source, new Date());
      const handle = await h.client.workflow.start<typeof backupDatabase>(BACKUP_WORKFLOW, {
        taskQueue: h.queues.backups,
        workflowId: id,
        args: [
          { database: source, stepRetry: { maximumAttempts: 3, initialIntervalMs: 500, heartbeatTimeoutMs: 3000 } },
        ],
      });
      await waitFor(
        () => dumpedBytes(h, id),
        (n) => n > 0,
        60_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nworker output:\n${child.output()}`);
      });
      await child.kill('SIGKILL');
      const key = `${source}/${(await handle.describe()).startTime.toISOString().replace(/[:.]/g, '-')}.dump`;
      await noFinalObject(h, key);

      const survivor = await startWorkers(h, ['backups']);
      try {
        const result = await handle.result();
        expect(result.status).toBe('verified');
        expect(await attemptsOfDump(h, id)).toBeGreaterThanOrEqual(2);
      } finally {
        await survivor.stop();
      }
      const { rows } = await h.pool.query<{ status: string }>('SELECT status FROM opsflow.backups WHERE id = $1', [id]);
      expect(rows).toEqual([{ status: 'verified' }]);
      // The killed attempt's temporary file was cleared by the retry; the final file is whole.
      const local = await readdir(path.join(h.config.backups.dir, source));
      expect(local.filter((f) => f.includes('.partial'))).toEqual([]);
    } finally {
      await child.kill('SIGKILL');
      await h.close();
    }
  }, 180_000);
});
