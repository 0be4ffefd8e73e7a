/**
 * Chaos (issue 18, scenarios c and d): (c) a worker process SIGKILLed while it uploads a backup to S3 and
 * samples a deploy's health gate — other workers finish both, each once; (d) S3 cut off mid-upload (a TCP
 * proxy that resets every connection) — the run ends failed and recorded within a minute, nothing under a final
 * name, and the next backup verifies once S3 is back. Real pg_dump, s3rver, deploy service, Temporal.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKUP_WORKFLOW, backupWorkflowId, type BackupResult } from '../../lib/backups/contract.js';
import type { backupDatabase } from '../../workflows/backups/workflow.js';
import { freePort } from '../global-setup.js';
import { databaseUrlOf, dropDatabase, queryIn, recreateDatabase } from '../helpers/databases.js';
import { serviceTarget, stopServices } from '../helpers/deploy-service.js';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from '../helpers/harness.js';
import { harnessEnv, spawnEntry, type Child } from '../helpers/processes.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { waitFor } from '../helpers/wait.js';
import { report } from './figures.js';

/** A TCP proxy in front of S3 that can be cut (every connection reset, new ones refused) and mended. */
async function s3Proxy(upstreamPort: number) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const port = await freePort();
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(upstreamPort, '127.0.0.1');
        for (const sock of [client, upstream]) {
          sockets.add(sock);
          sock.on('error', () => undefined);
          sock.on('close', () => sockets.delete(sock));
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', resolve);
    });
  await listen();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    cut: () => {
      server?.close();
      for (const sock of sockets) sock.destroy();
    },
    mend: listen,
  };
}

describe('chaos: workers and S3 failing under backups and deploys', () => {
  const source = `opsflow_chaos_bk_${process.pid}`;
  let s3: S3Server;
  let proxy: Awaited<ReturnType<typeof s3Proxy>>;
  let h: Harness;
  let dir: string;
  let webPort: number;
  let survivors: TestWorkers | undefined;

  beforeAll(async () => {
    await recreateDatabase(source);
    // About 30 MB of dump: pg_dump is still writing when the worker dies or S3 goes away.
    await queryIn(
      source,
      `CREATE TABLE blobs (id int PRIMARY KEY, body text);
       INSERT INTO blobs SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)
         || md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)
         FROM generate_series(1, 250000) g;`,
    );
    s3 = await startS3('opsflow-chaos');
    proxy = await s3Proxy(Number(new URL(s3.endpoint).port));
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-chaos-deploy-'));
    webPort = await freePort();
    // A gate of 12 good samples in a row at 1 s: long enough to kill the worker in the middle of it.
    const base = serviceTarget(dir, 'chaosweb', webPort);
    const target = { ...base, watchWindowSec: 0, health: { ...base.health, successThreshold: 12, timeoutSec: 60 } };
    await writeFile(path.join(dir, 'targets.json'), JSON.stringify({ targets: [target] }));
    h = await createHarness({
      BACKUP_DATABASE_URLS: databaseUrlOf(source),
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: proxy.endpoint,
      DEPLOY_TARGETS_FILE: path.join(dir, 'targets.json'),
    });
  });
  afterAll(async () => {
    await survivors?.stop();
    await h?.close();
    proxy?.cut();
    await s3?.close();
    await stopServices(dir, ['chaosweb']);
    await rm(dir, { recursive: true, force: true });
    await dropDatabase(source);
  });

  const dumpedBytes = async (id: string) => {
    const d = await h.client.workflow.getHandle(id).describe();
    const payload = d.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
    return payload ? (defaultPayloadConverter.fromPayload<{ bytes?: number }>(payload).bytes ?? 0) : 0;
  };
  const startBackup = (stepRetry: Record<string, number>) =>
    h.client.workflow.start<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(source, new Date()),
      args: [{ database: source, stepRetry }],
    });
  const objectKey = async (id: string) =>
    `${h.config.backups.s3!.prefix}${source}/${(await h.client.workflow.getHandle(id).describe()).startTime.toISOString().replace(/[:.]/g, '-')}.dump`;
  const inS3 = async (key: string) =>
    new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true })
      .send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
      .then(
        () => true,
        (err: { name?: string }) => (err.name === 'NotFound' ? false : Promise.reject(err as Error)),
      );
  const recorded = async (id: string) =>
    (await h.pool.query<{ status: string }>('SELECT status FROM opsflow.backups WHERE id = $1', [id])).rows[0]?.status;

  it('(c) a worker SIGKILLed mid-upload and mid-health-gate: both finish elsewhere, once', async () => {
    const child: Child = spawnEntry(
      'worker/main.ts',
      harnessEnv(h, {
        OPSFLOW_WORKER_FAMILIES: 'backups,deploys',
        BACKUP_DATABASE_URLS: databaseUrlOf(source),
        S3_BUCKET: s3.bucket,
        S3_ENDPOINT: proxy.endpoint,
        DEPLOY_TARGETS_FILE: path.join(dir, 'targets.json'),
      }),
    );
    let deployId: string;
    let backupId: string;
    try {
      const res = await testApp(h).request('/v1/deploys', {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ target: 'chaosweb', version: '1.0.0' }),
      });
      expect(res.status, await res.clone().text()).toBe(202);
      deployId = ((await res.json()) as { id: string }).id;
      const live = async () => {
        const r = await testApp(h).request(`/v1/deploys/${encodeURIComponent(deployId)}`, {
          headers: { authorization: `Bearer ${TEST_API_KEY}` },
        });
        return (await r.json()) as { live: { step: string; samples: unknown[] } | null };
      };
      await waitFor(live, (d) => d.live?.step === 'health-gate' && d.live.samples.length >= 2, 90_000).catch(
        (err: Error) => {
          throw new Error(`${err.message}\n${child.output()}`);
        },
      );
      const backup = await startBackup({ maximumAttempts: 3, initialIntervalMs: 500, heartbeatTimeoutMs: 3000 });
      backupId = backup.workflowId;
      await waitFor(
        () => dumpedBytes(backupId),
        (n) => n > 1024 * 1024,
        60_000,
      );
    } finally {
      await child.kill('SIGKILL');
    }
    const killedMidUpload = !(await inS3(await objectKey(backupId)));
    survivors = await startWorkers(h, ['backups', 'deploys']);
    const backup = (await h.client.workflow.getHandle(backupId).result()) as BackupResult;
    const deploy = await waitFor(
      () =>
        h.pool
          .query<{ status: string }>('SELECT status FROM opsflow.deploys WHERE id = $1', [deployId])
          .then((r) => r.rows[0]),
      (r) => r !== undefined && !['planning', 'running'].includes(r.status),
      90_000,
    );
    const commandRuns = (await readFile(path.join(dir, 'chaosweb', 'deploys.log'), 'utf8')).trim().split('\n');
    const terminal = [
      backup.status === 'verified' && (await recorded(backupId)) === 'verified',
      deploy?.status === 'succeeded',
    ];
    await report({
      scenario: 'c. worker SIGKILL (backup, deploy)',
      fault:
        'worker process SIGKILLed with a backup mid-upload to S3 and a deploy mid health gate; in-process workers take over',
      accepted: 2,
      delivered: terminal.filter(Boolean).length,
      lost: terminal.filter((t) => !t).length,
      duplicated: commandRuns.length - 1,
      notes: `backup ${backup.status} (upload cut by the kill: ${killedMidUpload}), deploy ${deploy?.status}; deploy command ran ${commandRuns.length}×; the backup's object exists once under its final name`,
    });
    expect(killedMidUpload).toBe(true);
    expect(backup.status, backup.reason).toBe('verified');
    expect(await recorded(backupId)).toBe('verified');
    expect(await inS3(await objectKey(backupId))).toBe(true);
    expect(deploy?.status).toBe('succeeded');
    expect(commandRuns).toEqual(['1.0.0']);
  }, 300_000);

  it('(d) S3 cut off mid-upload: failed and recorded within a minute, nothing under a final name; next one verifies', async () => {
    survivors ??= await startWorkers(h, ['backups', 'deploys']);
    const handle = await startBackup({ maximumAttempts: 1, heartbeatTimeoutMs: 30_000 });
    await waitFor(
      () => dumpedBytes(handle.workflowId),
      (n) => n > 1024 * 1024,
      60_000,
    );
    proxy.cut();
    const cutAt = Date.now();
    const failed = await handle.result();
    const endedInMs = Date.now() - cutAt;
    const failedKey = await objectKey(handle.workflowId);
    await proxy.mend();
    const next = await startBackup({ maximumAttempts: 2, initialIntervalMs: 500 });
    const verified = await next.result();
    const results = [
      failed.status === 'failed' && (await recorded(failed.id)) === 'failed',
      verified.status === 'verified' && (await recorded(verified.id)) === 'verified',
    ];
    const partial = (await inS3(failedKey)) ? 1 : 0;
    await report({
      scenario: 'd. S3 cut mid-upload',
      fault:
        'every S3 connection reset and new ones refused with about 1 MB of a 30 MB dump sent; S3 mended afterwards',
      accepted: 2,
      delivered: results.filter(Boolean).length,
      lost: results.filter((r) => !r).length,
      duplicated: partial,
      notes: `the cut run ended failed (${failed.reason ?? '—'}) ${(endedInMs / 1000).toFixed(1)} s after the cut, nothing under its final name; the next backup ${verified.status}`,
    });
    expect(failed.status).toBe('failed');
    expect(failed.reason).toMatch(/store s3/);
    expect(endedInMs).toBeLessThan(60_000);
    expect(await recorded(failed.id)).toBe('failed');
    expect(partial).toBe(0);
    expect(verified.status, verified.reason).toBe('verified');
  }, 300_000);
});
