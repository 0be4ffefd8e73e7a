/**
 * /metrics after real work (a webhook delivery, a backup) and the alert rules: every metric they use exists.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { BACKUP_WORKFLOW, backupWorkflowId } from '../lib/backups/contract.js';
import type { backupDatabase } from '../workflows/backups/workflow.js';
import { declareSchedules } from '../lib/schedules/declarations.js';
import { applySchedules } from '../worker/schedules.js';
import { deliveryWorkflowId } from '../lib/webhooks/contract.js';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from './helpers/harness.js';
import { freePort } from './global-setup.js';
import { databaseUrlOf, dropDatabase, recreateDatabase } from './helpers/databases.js';
import { startReceiver, type Receiver } from './helpers/http.js';
import { harnessEnv, spawnEntry } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

const sample = (text: string, metric: string, labels = ''): number | undefined => {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${metric}${labels ? `{${labels}}` : ''} `) || l.startsWith(`${metric}{${labels}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
};

describe('metrics', () => {
  let h: Harness;
  let workers: TestWorkers;
  let receiver: Receiver;
  const db = `opsflow_metrics_src_${process.pid}`;
  beforeAll(async () => {
    await recreateDatabase(db);
    receiver = await startReceiver((_req, res) => {
      res.writeHead(200).end('ok');
    });
    h = await createHarness({
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      BACKUP_DATABASE_URLS: databaseUrlOf(db),
      METRICS_TOKEN: 'metrics-token-0123456789',
    });
    workers = await startWorkers(h, ['webhooks', 'backups']);
  });
  afterAll(async () => {
    await workers.stop();
    await h.close();
    await receiver.close();
    await dropDatabase(db);
  });

  const scrape = async (app = testApp(h)) => {
    const res = await app.request('/metrics', { headers: { authorization: 'Bearer metrics-token-0123456789' } });
    expect(res.status).toBe(200);
    return res.text();
  };

  /** One real delivery through the API to the receiver, waited for to the end. */
  async function deliverOne(app = testApp(h)): Promise<void> {
    const headers = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };
    const type = `metrics.${randomBytes(4).toString('hex')}`;
    const endpoint = (await (
      await app.request('/v1/endpoints', {
        method: 'POST',
        headers,
        body: JSON.stringify({ url: receiver.url, eventTypes: [type] }),
      })
    ).json()) as { id: string };
    const event = (await (
      await app.request('/v1/events', { method: 'POST', headers, body: JSON.stringify({ type, payload: {} }) })
    ).json()) as { deliveries: { id: string; endpointId: string }[] };
    // Its own delivery: endpoints other tests made for every event type may receive this event too.
    const mine = event.deliveries.find((d) => d.endpointId === endpoint.id)!;
    await h.client.workflow.getHandle(deliveryWorkflowId(mine.id)).result();
  }

  it('needs the metrics token when one is set', async () => {
    expect((await testApp(h).request('/metrics')).status).toBe(401);
    expect(
      (await testApp(h).request('/metrics', { headers: { authorization: `Bearer ${TEST_API_KEY}` } })).status,
    ).toBe(401);
  });

  it('moves after real work: a delivery, a backup, HTTP requests', async () => {
    await applySchedules(
      h.client,
      declareSchedules(h.config, h.queues).filter((d) => d.id === 'opsflow:system-check'),
    );
    const app = testApp(h);
    const before = await scrape(app);
    await deliverOne(app);
    const backup = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(db, new Date()),
      args: [{ database: db }],
    });
    expect(backup).toMatchObject({ status: 'verified' });

    const after = await scrape(app);
    expect(sample(after, 'opsflow_webhook_attempts', 'outcome="success"')).toBeGreaterThan(
      sample(before, 'opsflow_webhook_attempts', 'outcome="success"') ?? 0,
    );
    expect(sample(after, 'opsflow_webhook_deliveries', 'status="delivered"')).toBeGreaterThan(0);
    expect(sample(before, 'opsflow_backup_last_verified_timestamp_seconds', `database="${db}"`)).toBe(0);
    const ts = sample(after, 'opsflow_backup_last_verified_timestamp_seconds', `database="${db}"`)!;
    expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(120);
    expect(sample(after, 'opsflow_backup_last_verified_size_bytes', `database="${db}"`)).toBeGreaterThan(0);
    expect(after).toMatch(/opsflow_http_requests_total\{method="POST",route="\/v1\/events",status="202"\} \d+/);
    // The schedule gauges come from the schedules themselves (applied at the start of this test): a sample each.
    // (a count: the shared server's schedule may have skipped a run already, so only its presence is fixed).
    expect(sample(after, 'opsflow_schedule_runs_skipped', 'schedule="opsflow:system-check"')).toBeGreaterThanOrEqual(0);
    expect(sample(after, 'opsflow_schedule_paused', 'schedule="opsflow:system-check"')).toBe(0);
  });

  it('a worker process exports the SDK metrics and the attempt-latency histogram on WORKER_METRICS_ADDRESS', async () => {
    const port = await freePort();
    const child = spawnEntry(
      'worker/main.ts',
      harnessEnv(h, {
        WORKER_METRICS_ADDRESS: `127.0.0.1:${port}`,
        WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
        BACKUP_DATABASE_URLS: h.config.backups.databases.map((d) => d.url).join(','),
      }),
    );
    // Only the child polls now, so the attempt below is its.
    await workers.stop();
    try {
      const workerScrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      await deliverOne();
      const text = await waitFor(
        () => workerScrape().catch((err: Error) => `${err.message}\n${child.output()}`),
        (t) => /opsflow_webhook_attempt_latency_bucket\{[^}]*outcome="success"/.test(t),
        30_000,
      );
      // A real histogram (buckets, sum, count) of this attempt, tagged with its activity and queue.
      expect(text).toMatch(/# TYPE opsflow_webhook_attempt_latency histogram/);
      const count = text.match(/^opsflow_webhook_attempt_latency_count\{([^}]*outcome="success"[^}]*)\} (\d+)/m);
      expect(count?.[1], count?.[0]).toContain(`taskQueue="${h.queues.webhooks}"`);
      expect(Number(count?.[2])).toBeGreaterThanOrEqual(1);
      // The SDK's own metrics are there too (a first-try delivery's attempt is a local activity: the fast path).
      expect(text).toMatch(/^temporal_local_activity_execution_latency\w*\{[^}]*workflow_type="webhookDeliveryFast"/m);
      expect(text).toMatch(/^temporal_workflow_completed\w*\{/m);
    } finally {
      await child.kill('SIGKILL');
      workers = await startWorkers(h, ['webhooks', 'backups']);
    }
  }, 120_000);

  it('alert rules use only metrics opsflow exports', async () => {
    const text = await scrape();
    const exported = new Set([...text.matchAll(/^# HELP (\w+)/gm)].map((m) => m[1]));
    const rules = parse(await readFile('monitoring/alerts.yml', 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'OpsflowWebhookFailureRateHigh',
        'OpsflowWebhookDlqGrowing',
        'OpsflowSubscriptionsExpiringSoon',
        'OpsflowNoVerifiedBackup',
        'OpsflowDeployRolledBack',
        'OpsflowApiDown',
      ]),
    );
    for (const r of all) {
      for (const [name] of r.expr.matchAll(/\bopsflow_\w+/g))
        expect(exported.has(name), `${r.alert}: ${name}`).toBe(true);
    }
  });

  it("the Grafana dashboard's queries parse (promtool) and name only metrics opsflow exports", async () => {
    const dash = JSON.parse(await readFile('monitoring/grafana/dashboards/opsflow.json', 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => ({ title: p.title, expr: t.expr })));
    // Every query as a recording rule: promtool parses each one as PromQL.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-dashboard-'));
    try {
      const file = path.join(dir, 'panels.yml');
      await writeFile(
        file,
        stringify({
          groups: [{ name: 'panels', rules: exprs.map((e, i) => ({ record: `opsflow:panel_${i}`, expr: e.expr })) }],
        }),
      );
      const { stdout } = await promisify(execFile)(inject('promtoolPath'), ['check', 'rules', file]).catch(
        (err: { stdout?: string; stderr?: string }) => {
          throw new Error(`promtool check rules: ${err.stdout ?? ''}${err.stderr ?? ''}`);
        },
      );
      expect(stdout).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // The API's metrics and the worker's histogram (whose series end in _bucket, _sum, _count).
    const exported = new Set([...(await scrape()).matchAll(/^# HELP (\w+)/gm)].map((m) => m[1]));
    exported.add('opsflow_webhook_attempt_latency');
    for (const { title, expr } of exprs) {
      for (const [name] of expr.matchAll(/\bopsflow_\w+/g)) {
        expect(exported.has(name.replace(/_(bucket|sum|count)$/, '')) || exported.has(name), `${title}: ${name}`).toBe(
          true,
        );
      }
    }
  });

  it('promtool accepts the rules, and they fire (and stay quiet) as monitoring/alerts.test.yml says', async () => {
    // promtool is provisioned by the test setup (PATH, or built from Go modules into .tools/); the unit tests
    // feed synthetic series shaped like /metrics and check each seed alert fires past its threshold and not below.
    const promtool = (...args: string[]) =>
      promisify(execFile)(inject('promtoolPath'), args).catch((err: { stdout?: string; stderr?: string }) => {
        throw new Error(`promtool ${args.join(' ')}: ${err.stdout ?? ''}${err.stderr ?? ''}`);
      });
    expect((await promtool('check', 'rules', 'monitoring/alerts.yml')).stdout).toMatch(/SUCCESS: 10 rules found/);
    expect((await promtool('test', 'rules', 'monitoring/alerts.test.yml')).stdout).toMatch(/SUCCESS/);
  });
});
