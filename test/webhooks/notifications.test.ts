/**
 * Ops notifications end to end (issue 13, part 3): real backups (one failing, then one verifying) and real deploys
 * (a good one, then a bad one rolled back) on the real Temporal server publish their events; a Slack endpoint and a
 * PagerDuty endpoint, each a real HTTP receiver on loopback, get what Slack's incoming webhooks and PagerDuty's
 * Events API v2 accept (checked against their documented shapes, test/webhooks/peers.ts), with retries and
 * Retry-After like any delivery.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPS_EVENTS } from '../../lib/webhooks/formats.js';
import { BACKUP_WORKFLOW, backupWorkflowId, type BackupResult } from '../../lib/backups/contract.js';
import type { backupDatabase } from '../../workflows/backups/workflow.js';
import type { DeployResult } from '../../lib/deploys/contract.js';
import { deliveryWorkflowId } from '../../lib/webhooks/contract.js';
import { freePort } from '../global-setup.js';
import { databaseUrlOf, dropDatabase, queryIn, recreateDatabase } from '../helpers/databases.js';
import { serviceTarget, stopServices } from '../helpers/deploy-service.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { apiCaller } from '../helpers/api.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { discordProblems, pagerDutyProblems, slackProblems } from './peers.js';

const ROUTING_KEY = 'R0ut1ngK3y0123456789abcdefABCDEF';
const UI = 'http://temporal-ui.test:8233';
/** A target of its own: deploy history is per target name, and other files deploy `web` in the same database. */
const TARGET = 'notified';

interface PdEvent {
  routing_key: string;
  event_action: 'trigger' | 'resolve';
  dedup_key: string;
  payload?: { summary: string; source: string; severity: string; class: string };
  links?: { href: string }[];
}
interface SlackMessage {
  text: string;
  blocks: { type: string; text?: { text: string }; elements?: { url?: string; text?: string | { text: string } }[] }[];
}

describe('ops notifications to Slack, PagerDuty and Discord', () => {
  let h: Harness;
  let workers: TestWorkers;
  let dir: string;
  let port: number;
  let slack: Receiver;
  let pd: Receiver;
  let discord: Receiver;
  let pdCalls = 0;
  const endpointIds: string[] = [];
  const db = `opsflow_notify_${process.pid}`;

  const api = apiCaller(() => testApp(h));
  const parsed = <T>(r: ReceivedRequest) => JSON.parse(r.body) as T;
  const pdEvents = () => pd.requests.map((r) => parsed<PdEvent>(r));
  const slackMessages = () => slack.requests.map((r) => parsed<SlackMessage>(r));

  async function backup(stepRetry?: { maximumAttempts: number }): Promise<BackupResult> {
    return h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(db, new Date()),
      args: [{ database: db, ...(stepRetry ? { stepRetry } : {}) }],
    });
  }
  async function deploy(version: string): Promise<DeployResult> {
    const res = await api<{ id: string }>('POST', '/v1/deploys', { target: TARGET, version });
    expect(res.status).toBe(202);
    const { rows } = await h.pool.query<{ workflow_id: string; run_id: string }>(
      'SELECT workflow_id, run_id FROM opsflow.deploys WHERE id = $1',
      [res.body.id],
    );
    return (await h.client.workflow.getHandle(rows[0]!.workflow_id, rows[0]!.run_id).result()) as DeployResult;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-notify-'));
    port = await freePort();
    const file = path.join(dir, 'targets.json');
    await writeFile(file, JSON.stringify({ targets: [serviceTarget(dir, TARGET, port)] }));
    await dropDatabase(db); // the first backup finds no database: it fails
    h = await createHarness({
      DEPLOY_TARGETS_FILE: file,
      BACKUP_DATABASE_URLS: databaseUrlOf(db),
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      TEMPORAL_UI_URL: UI,
      OPSFLOW_CONSOLE_URL: 'https://ops.example.com/console',
    });
    workers = await startWorkers(h, ['webhooks', 'backups', 'deploys']);
    slack = await startReceiver((_req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
    // Discord answers an execute-webhook without ?wait=true 204 No Content.
    discord = await startReceiver((_req, res) => void res.writeHead(204).end());
    // PagerDuty's answers: the first request is rate-limited (429, Retry-After 30 s), then 202 as documented.
    pd = await startReceiver((req, res) => {
      pdCalls += 1;
      if (pdCalls === 1) return void res.writeHead(429, { 'retry-after': '30' }).end();
      const { dedup_key } = JSON.parse(req.body) as PdEvent;
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key }));
    });
  });
  afterAll(async () => {
    // The PagerDuty endpoint takes every condition event: gone before the next file publishes any.
    for (const id of endpointIds) await api('DELETE', `/v1/endpoints/${id}`);
    await workers?.stop();
    await h?.close();
    await slack?.close();
    await pd?.close();
    await discord?.close();
    await stopServices(dir, [TARGET]);
    await dropDatabase(db).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('endpoints: format and routing key are checked, the key is never shown', async () => {
    // Other files' endpoints stay in this database (deleted ones too) and may have had a receiver on the same port.
    const since = (await h.pool.query<{ t: Date }>('SELECT now() AS t')).rows[0]!.t;
    const bad = async (body: Record<string, unknown>, status: number, message: RegExp) => {
      const res = await api<{ error: { code: string; message: string } }>('POST', '/v1/endpoints', body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error.message).toMatch(message);
    };
    await bad({ url: pd.url, format: 'pagerduty' }, 400, /routingKey: required with format pagerduty/);
    await bad(
      { url: slack.url, format: 'slack', routingKey: ROUTING_KEY },
      400,
      /routingKey: only for format pagerduty/,
    );
    await bad({ url: pd.url, format: 'pagerduty', routingKey: 'short' }, 400, /32 letters and digits/);
    await bad({ url: slack.url, format: 'teams' }, 400, /format/);
    await bad(
      { url: pd.url, format: 'pagerduty', routingKey: ROUTING_KEY, eventTypes: ['deploy.started'] },
      422,
      /PagerDuty endpoint receives only events that trigger or resolve/,
    );
    const { rows } = await h.pool.query(
      `SELECT count(*)::int AS n FROM opsflow.webhook_endpoints
        WHERE (url LIKE $1 OR url LIKE $2) AND created_at >= $3`,
      [`${slack.url}%`, `${pd.url}%`, since],
    );
    expect(rows[0]).toEqual({ n: 0 }); // nothing half-made

    const s = await api<{ id: string; format: string }>('POST', '/v1/endpoints', {
      url: `${slack.url}/services/T000/B000/XXXX`,
      format: 'slack',
      // Every ops event (other test files share this database: no catch-all endpoint).
      eventTypes: OPS_EVENTS,
      retrySchedule: ['0s', '1s', '2s'],
    });
    expect(s.status).toBe(201);
    expect(s.body.format).toBe('slack');
    endpointIds.push(s.body.id);
    const p = await api<{ id: string; format: string }>('POST', '/v1/endpoints', {
      url: `${pd.url}/v2/enqueue`,
      format: 'pagerduty',
      routingKey: ROUTING_KEY,
      retrySchedule: ['0s', '1m'],
    });
    expect(p.status).toBe(201);
    endpointIds.push(p.body.id);
    const shown = await api('GET', `/v1/endpoints/${p.body.id}`);
    expect(shown.body).toMatchObject({ format: 'pagerduty' });
    expect(JSON.stringify(shown.body)).not.toContain(ROUTING_KEY);
    const stored = await h.pool.query<{ routing_key: string }>(
      'SELECT routing_key FROM opsflow.webhook_endpoints WHERE id = $1',
      [p.body.id],
    );
    expect(stored.rows[0]!.routing_key).not.toContain(ROUTING_KEY); // encrypted at rest
    const patched = await api<{ error: { message: string } }>('PATCH', `/v1/endpoints/${s.body.id}`, {
      routingKey: ROUTING_KEY,
    });
    expect(patched.status).toBe(422);
    expect(patched.body.error.message).toMatch(/only pagerduty ones have a routing key/);
    // Discord hears the deploys, as the seed's pipeline notified its channel.
    const d = await api<{ id: string; format: string }>('POST', '/v1/endpoints', {
      url: `${discord.url}/api/webhooks/123/token`,
      format: 'discord',
      eventTypes: ['deploy.*'],
      retrySchedule: ['0s', '1s'],
    });
    expect(d.status).toBe(201);
    expect(d.body.format).toBe('discord');
    endpointIds.push(d.body.id);
  });

  it('a failed backup triggers, the next verified one resolves the same PagerDuty incident; Slack hears both', async () => {
    const failed = await backup({ maximumAttempts: 1 });
    expect(failed.status).toBe('failed');
    const key = `opsflow:backup:${db}`;
    await waitFor(pdEvents, (e) => e.some((x) => x.dedup_key === key && x.event_action === 'trigger'));

    await recreateDatabase(db);
    await queryIn(db, 'CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)');
    const verified = await backup();
    expect(verified.status, verified.reason).toBe('verified');
    await waitFor(pdEvents, (e) => e.some((x) => x.dedup_key === key && x.event_action === 'resolve'));

    // The trigger's first request was answered 429: it waits for its retry while the resolve goes out. Retried
    // now (as the schedule would, later), it must not reopen the incident: superseded, not sent, discarded.
    const failedDelivery = await h.pool.query<{ id: string }>(
      `SELECT id FROM opsflow.webhook_deliveries WHERE endpoint_id = $1 AND event_type = 'backup.failed'`,
      [endpointIds[1]],
    );
    const deliveryId = failedDelivery.rows[0]!.id;
    expect((await api('GET', `/v1/deliveries/${deliveryId}`)).body).toMatchObject({ status: 'retrying' });
    expect((await api('POST', `/v1/deliveries/${deliveryId}/retry`)).status).toBe(202);
    const outcome = (await h.client.workflow.getHandle(deliveryWorkflowId(deliveryId)).result()) as {
      status: string;
    };
    expect(outcome.status).toBe('discarded');
    const detail = await api<{ status: string; lastError: string }>('GET', `/v1/deliveries/${deliveryId}`);
    expect(detail.body.status).toBe('discarded');
    expect(detail.body.lastError).toMatch(/superseded by msg_.*condition backup:/);
    const forBackup = pdEvents().filter((e) => e.dedup_key === key);
    expect(forBackup.map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
    const trigger = forBackup[0]!;
    expect(trigger).toMatchObject({
      routing_key: ROUTING_KEY,
      payload: { source: db, severity: 'error', class: 'backup.failed' },
    });
    expect(trigger.payload!.summary).toContain(`Backup ${failed.id} of ${db} failed`);
    // The backup's id is its workflow id: the link opens the failed run.
    expect(trigger.links?.[0]?.href).toBe(`${UI}/namespaces/default/workflows/${encodeURIComponent(failed.id)}`);
    expect(forBackup[1]).toEqual({ routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: key });

    await waitFor(slackMessages, (m) => m.filter((x) => x.text.includes(db)).length >= 2);
    const texts = slackMessages()
      .filter((m) => m.text.includes(db))
      .map((m) => m.blocks[0]!.text!.text);
    expect(texts).toEqual([`Backup of ${db} FAILED`, `Backup of ${db} verified`]);
  });

  it('a rolled-back deploy triggers a PagerDuty incident and a Slack message; the deploy before it resolved', async () => {
    const good = await deploy('1.0.0');
    expect(good.status, good.reason).toBe('succeeded');
    const bad = await deploy('1.1.0-bad500');
    expect(bad.status, bad.reason).toBe('rolled_back');
    const key = `opsflow:deploy:${TARGET}`;
    await waitFor(pdEvents, (e) => e.some((x) => x.dedup_key === key && x.event_action === 'trigger'));
    const forDeploy = pdEvents().filter((e) => e.dedup_key === key);
    expect(forDeploy.map((e) => e.event_action)).toEqual(['resolve', 'trigger']);
    expect(forDeploy[1]).toMatchObject({
      payload: { source: TARGET, severity: 'error', class: 'deploy.rolled_back' },
    });
    expect(forDeploy[1]!.payload!.summary).toMatch(/1\.1\.0-bad500 failed and was rolled back to 1\.0\.0/);
    expect(forDeploy[1]!.links?.[0]?.href).toBe(
      `${UI}/namespaces/default/workflows/${encodeURIComponent(`deploy:${TARGET}`)}`,
    );

    // Slack hears every step; PagerDuty only conditions (no page for a deploy starting).
    await waitFor(slackMessages, (m) => m.some((x) => x.text.includes('rolled back')));
    const headers = slackMessages().map((m) => m.blocks[0]!.text!.text);
    expect(headers).toEqual(
      expect.arrayContaining([
        `Deploying ${TARGET}: ${good.plan?.previousVersion ?? '—'} → 1.0.0`,
        `Deployed ${TARGET} 1.0.0`,
        `Deploying ${TARGET}: 1.0.0 → 1.1.0-bad500`,
        `Deploy of ${TARGET} 1.1.0-bad500 failed and was rolled back to 1.0.0`,
      ]),
    );
    const rolled = slackMessages().find((m) => m.text.includes('rolled back'))!;
    const button = rolled.blocks.find((b) => b.type === 'actions')!.elements![0]!;
    expect(button.url).toBe(`${UI}/namespaces/default/workflows/${encodeURIComponent(`deploy:${TARGET}`)}`);
    expect(pdEvents().some((e) => e.payload?.class === 'deploy.started')).toBe(false);
  });

  it('every request was well-formed for its peer, and re-enabling an endpoint resolves its incident', async () => {
    const slackId = endpointIds[0]!;
    expect((await api('PATCH', `/v1/endpoints/${slackId}`, { enabled: false })).status).toBe(200);
    expect((await api('PATCH', `/v1/endpoints/${slackId}`, { enabled: true })).status).toBe(200);
    await waitFor(pdEvents, (e) => e.some((x) => x.dedup_key === `opsflow:endpoint:${slackId}`));
    expect(pdEvents().find((x) => x.dedup_key === `opsflow:endpoint:${slackId}`)?.event_action).toBe('resolve');

    expect(slack.requests.length).toBeGreaterThanOrEqual(6);
    for (const r of slack.requests) {
      expect(r.path).toBe('/services/T000/B000/XXXX');
      expect(r.headers['content-type']).toBe('application/json');
      expect(slackProblems(parsed(r)), r.body).toEqual([]);
    }
    for (const r of pd.requests) {
      expect(r.path).toBe('/v2/enqueue');
      expect(pagerDutyProblems(parsed(r)), r.body).toEqual([]);
    }
    // Discord: every deploy event as one embed, the rolled-back one red, linked to its run and the console.
    expect(discord.requests.length).toBeGreaterThanOrEqual(4);
    for (const r of discord.requests) {
      expect(r.path).toBe('/api/webhooks/123/token');
      expect(r.headers['content-type']).toBe('application/json');
      expect(discordProblems(parsed(r)), r.body).toEqual([]);
    }
    type Embed = { title: string; color: number; url?: string; fields: { name: string; value: string }[] };
    const embeds = discord.requests.map((r) => parsed<{ embeds: Embed[] }>(r).embeds[0]!);
    const rolledBack = embeds.find((e) => /rolled back/.test(e.title))!;
    expect(rolledBack.color).toBe(0xdc2626);
    expect(rolledBack.url).toMatch(new RegExp(`^${UI}/namespaces/default/workflows/`));
    expect(rolledBack.fields.find((f) => f.name === 'Open')!.value).toContain(
      '[Console](https://ops.example.com/console/deploys)',
    );
    expect(embeds.find((e) => /^Deployed /.test(e.title))!.color).toBe(0x2563eb);
  });
});
