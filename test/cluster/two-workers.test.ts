/**
 * The production topology (`npm run test:cluster`): Temporal on PostgreSQL, two worker processes running the
 * built code (dist/, pre-bundled workflows). One worker is SIGKILLed while it uploads a backup and while a
 * webhook delivery is retrying; the other finishes everything, nothing is lost, and what the contracts say
 * happens once happens once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { quoteIdent } from '../../lib/db.js';
import { BACKUP_WORKFLOW, backupWorkflowId, type BackupResult } from '../../lib/backups/contract.js';
import { deliveryWorkflowId } from '../../lib/webhooks/contract.js';
import { createHarness, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';
import { startReceiver, type Receiver } from '../helpers/http.js';
import { harnessEnv } from '../helpers/processes.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { waitFor } from '../helpers/wait.js';

const builtWorker = path.resolve('dist/worker/main.js');

describe('two workers on Temporal-on-PostgreSQL, one killed mid-work', () => {
  let h: Harness;
  let s3: S3Server;
  let receiver: Receiver;
  const source = `opsflow_cluster_src_${process.pid}`;
  const sourceUrl = () => inject('adminDatabaseUrl').replace(/\/postgres$/, `/${source}`);
  const workers: { child: ChildProcess; output: () => string }[] = [];
  let okResponses = 0;

  beforeAll(async () => {
    expect(existsSync(builtWorker), 'run `npm run build` first (npm run test:cluster does)').toBe(true);
    const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(source)} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${quoteIdent(source)}`);
    await admin.end();
    const src = new pg.Client({ connectionString: sourceUrl() });
    await src.connect();
    await src.query(
      `CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload FROM generate_series(1, 700000) g`,
    );
    await src.end();
    s3 = await startS3();
    // The first three requests fail: the delivery is retrying while a worker dies.
    receiver = await startReceiver((_req, res) => {
      if (receiver.requests.length <= 3) {
        res.writeHead(503).end('busy');
        return;
      }
      okResponses += 1;
      res.writeHead(200).end('ok');
    });
    const env = {
      BACKUP_DATABASE_URLS: sourceUrl(),
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: s3.endpoint,
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
    };
    h = await createHarness(env);
    for (let i = 0; i < 2; i++) {
      const child = spawn(process.execPath, [builtWorker], {
        env: { ...process.env, ...harnessEnv(h, env) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
      child.stderr.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
      workers.push({ child, output: () => out });
    }
  });
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await h?.close();
    await s3?.close();
    await receiver?.close();
    const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(source)} WITH (FORCE)`);
    await admin.end();
  });

  it('the surviving worker finishes the backup and the delivery; nothing lost, nothing done twice', async () => {
    const app = testApp(h);
    const headers = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };
    const type = `cluster.${randomBytes(4).toString('hex')}`;
    const ep = await app.request('/v1/endpoints', {
      method: 'POST',
      headers,
      body: JSON.stringify({ url: receiver.url, eventTypes: [type], retrySchedule: ['0s', '2s', '2s', '2s', '2s'] }),
    });
    expect(ep.status).toBe(201);
    const published = await app.request('/v1/events', {
      method: 'POST',
      headers,
      body: JSON.stringify({ type, payload: {} }),
    });
    const event = (await published.json()) as { eventId: string; deliveries: { id: string }[] };

    const id = backupWorkflowId(source, new Date());
    const handle = await h.client.workflow.start(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: id,
      args: [{ database: source, stepRetry: { maximumAttempts: 3, initialIntervalMs: 500, heartbeatTimeoutMs: 3000 } }],
    });
    // Wait until one worker is uploading, then kill exactly that one.
    const uploading = await waitFor(
      async () => (await handle.describe()).raw.pendingActivities?.[0],
      (a) => {
        const beat = a?.heartbeatDetails?.payloads?.[0];
        return !!beat && (defaultPayloadConverter.fromPayload<{ bytes?: number }>(beat).bytes ?? 0) > 0;
      },
      120_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${workers.map((w) => w.output()).join('\n---\n')}`);
    });
    const pid = Number(uploading!.lastWorkerIdentity?.split('@')[0]);
    const victim = workers.find((w) => w.child.pid === pid);
    expect(victim, `worker identity ${uploading!.lastWorkerIdentity}`).toBeDefined();
    expect(receiver.requests.length).toBeLessThan(4); // the delivery is still retrying
    victim!.child.kill('SIGKILL');
    const survivor = workers.find((w) => w !== victim)!;

    // Bounded below the test's own timeout, so a stuck run says where it is stuck and what the workers said.
    const within = async <T>(what: string, wf: string, p: Promise<T>): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          void h.client.workflow
            .getHandle(wf)
            .describe()
            .then(
              (d) => JSON.stringify({ status: d.status.name, pending: d.raw.pendingActivities }),
              (err: Error) => err.message,
            )
            .then((state) =>
              reject(
                new Error(`${what} not done in 90 s: ${state}\n${workers.map((w) => w.output()).join('\n---\n')}`),
              ),
            );
        }, 90_000);
      });
      try {
        return await Promise.race([p, late]);
      } finally {
        clearTimeout(timer);
      }
    };
    const result = await within('the backup', id, handle.result() as Promise<BackupResult>);
    expect(result.status, survivor.output()).toBe('verified');
    const local = await readdir(path.join(h.config.backups.dir, source));
    expect(local.filter((f) => f.includes('.partial'))).toEqual([]);
    const catalog = await h.pool.query<{ status: string }>('SELECT status FROM opsflow.backups WHERE id = $1', [id]);
    expect(catalog.rows).toEqual([{ status: 'verified' }]);

    const deliveryId = deliveryWorkflowId(event.deliveries[0]!.id);
    const delivery: unknown = await within(
      'the delivery',
      deliveryId,
      h.client.workflow.getHandle(deliveryId).result(),
    );
    expect(delivery).toMatchObject({ status: 'delivered' });
    // Delivered once (one 200 at the receiver), every attempt recorded once, no dead letter.
    expect(okResponses).toBe(1);
    expect(new Set(receiver.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set([event.eventId]));
    const attempts = await h.pool.query<{ attempt_no: number }>(
      'SELECT attempt_no FROM opsflow.webhook_attempts WHERE delivery_id = $1 ORDER BY attempt_no',
      [event.deliveries[0]!.id],
    );
    expect(attempts.rows.map((r) => r.attempt_no)).toEqual([1, 2, 3, 4]);
    const dead = await h.pool.query('SELECT 1 FROM opsflow.dead_letters WHERE delivery_id = $1', [
      event.deliveries[0]!.id,
    ]);
    expect(dead.rowCount).toBe(0);
    expect(survivor.child.exitCode).toBeNull();
  }, 240_000);
});
