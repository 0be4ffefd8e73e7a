/**
 * The README's operator queries, each run against the real server after real opsflow work: a dead-lettered
 * delivery, a subscription expiring in 3 days, a backup, a deploy that rolled back.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { operatorQueries } from '../lib/operator-queries.js';
import { BACKUP_WORKFLOW, backupWorkflowId } from '../lib/backups/contract.js';
import type { backupDatabase } from '../workflows/backups/workflow.js';
import { deliveryWorkflowId } from '../lib/webhooks/contract.js';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from './helpers/harness.js';
import { startReceiver, type Receiver } from './helpers/http.js';
import { waitFor } from './helpers/wait.js';

describe('operator queries', () => {
  let h: Harness;
  let workers: TestWorkers;
  let failing: Receiver;
  let health: Receiver;
  let dir: string;
  const target = `oq-${process.pid}`;
  const db = new URL(inject('databaseUrl')).pathname.slice(1);

  beforeAll(async () => {
    failing = await startReceiver((_req, res) => {
      res.writeHead(500).end();
    });
    // Health of the deploy target: bad for the new version's gate, good again after the rollback.
    health = await startReceiver((_req, res) => {
      res.writeHead(health.requests.length <= 2 ? 500 : 200).end('{}');
    });
    dir = await mkdtemp(path.join(os.tmpdir(), 'oq-'));
    const file = path.join(dir, 'targets.json');
    await writeFile(
      file,
      JSON.stringify([
        {
          name: target,
          environment: 'staging',
          commands: { deploy: 'true', rollback: 'true', currentVersion: 'echo 1.0.0' },
          health: {
            url: `${health.url}/health`,
            intervalSec: 1,
            timeoutSec: 10,
            successThreshold: 1,
            failureThreshold: 2,
          },
        },
      ]),
    );
    h = await createHarness({
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      DEPLOY_TARGETS_FILE: file,
      BACKUP_DATABASE_URLS: inject('databaseUrl'),
    });
    workers = await startWorkers(h, ['webhooks', 'subscriptions', 'backups', 'deploys']);
  });
  afterAll(async () => {
    await workers.stop();
    await h.close();
    await failing.close();
    await health.close();
    await rm(dir, { recursive: true, force: true });
  });

  const list = async (query: string) => {
    const ids: string[] = [];
    for await (const w of h.client.workflow.list({ query })) ids.push(w.workflowId);
    return ids;
  };

  it('each documented query returns the workflows it is about', async () => {
    const app = testApp(h);
    const headers = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };
    const startOfDay = new Date(new Date().setUTCHours(0, 0, 0, 0));

    // A delivery that dead-letters (one attempt, receiver answers 500).
    const type = `oq.${process.pid}`;
    await app.request('/v1/endpoints', {
      method: 'POST',
      headers,
      body: JSON.stringify({ url: failing.url, eventTypes: [type], retrySchedule: ['0s'] }),
    });
    const ev = (await (
      await app.request('/v1/events', { method: 'POST', headers, body: JSON.stringify({ type, payload: {} }) })
    ).json()) as { deliveries: { id: string }[] };
    const deliveryId = deliveryWorkflowId(ev.deliveries[0]!.id);
    await h.client.workflow.getHandle(deliveryId).result();

    // A subscription expiring in 3 days.
    const subId = `oq-sub-${process.pid}`;
    const put = await app.request(`/v1/subscriptions/${subId}`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({
        tenantId: 't-oq',
        email: 'oq@example.com',
        plan: 'pro',
        expiresAt: new Date(Date.now() + 3 * 86400_000).toISOString(),
      }),
    });
    expect(put.status, await put.clone().text()).toBeLessThan(300);

    // A backup and a deploy that rolls back.
    const backup = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(db, new Date()),
      args: [{ database: db }],
    });
    const dep = await app.request('/v1/deploys', {
      method: 'POST',
      headers,
      body: JSON.stringify({ target, version: '1.1.0' }),
    });
    const depId = ((await dep.json()) as { id: string }).id;
    const deployRun = await waitFor(
      async () =>
        (
          await h.pool.query<{ status: string; run_id: string }>(
            'SELECT status, run_id FROM opsflow.deploys WHERE id = $1',
            [depId],
          )
        ).rows[0],
      (r) => r?.status === 'rolled_back' || r?.status === 'failed',
      30_000,
    );
    expect(deployRun?.status).toBe('rolled_back');

    // Visibility trails the workflows by a moment on every server: poll until each query answers.
    const host = new URL(failing.url).host;
    expect(
      await waitFor(
        () => list(operatorQueries.failedDeliveriesToHost(host, startOfDay)),
        (ids) => ids.includes(deliveryId),
        10_000,
      ),
    ).toContain(deliveryId);
    const week = new Date(Date.now() + 7 * 86400_000);
    const subs = await waitFor(
      () => list(operatorQueries.subscriptionsExpiringBefore(week)),
      (ids) => ids.some((i) => i.includes(subId)),
      10_000,
    );
    expect(subs.some((i) => i.includes(subId))).toBe(true);
    // Not in the list when it expires after the window.
    expect(
      (await list(operatorQueries.subscriptionsExpiringBefore(new Date(Date.now() + 86400_000)))).some((i) =>
        i.includes(subId),
      ),
    ).toBe(false);
    const backups = await waitFor(
      () => list(operatorQueries.backupsOf(db)),
      (ids) => ids[0] === backup.id,
      10_000,
    );
    expect(backups[0]).toBe(backup.id);
    const rolledBack = await waitFor(
      () => list(operatorQueries.deploysRolledBackSince(new Date(new Date().setUTCDate(1)))),
      (ids) => ids.includes(`deploy:${target}`),
      10_000,
    );
    expect(rolledBack).toContain(`deploy:${target}`);
  }, 120_000);
});
