/**
 * Fault drills on the compose stack, done the way an operator's bad day does them — with compose itself:
 *   a. `docker compose kill worker` (both replicas) with a backup mid-dump and a deploy mid health gate, then
 *      `up -d`: both finish, the backup verified once, the deploy's outcome recorded once;
 *   b. `docker compose restart temporal` under 10 events/s: every accepted event delivered once;
 *   c. `docker compose stop postgres` for 10 s under 10 events/s: the API answers 503 fast, then recovers, and
 *      every accepted event is delivered once.
 * Each counts accepted / delivered / lost / duplicated into test-results/compose-drills.jsonl, which run.sh
 * writes into bench/RESULTS.md beside the chaos table.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { countDeliveries, report, sleep, startLoad, type ScenarioFigures } from '../chaos/figures.js';
import { waitFor } from '../helpers/wait.js';
import { API, adminKey, api, appSql, compose, containers, docker, peerUrl } from './stack.js';

const figures = path.resolve('test-results/compose-drills.jsonl');
const record = (f: ScenarioFigures) => report(f, figures);

let receiver: string;
let shopweb: string;
beforeAll(async () => {
  receiver = await peerUrl('opsflow-receiver');
  shopweb = await peerUrl('opsflow-shopweb');
});

/** The webhook-ids the receiver got for one path (every attempt, success or not). */
async function receivedIds(pathname: string, okOnly = true): Promise<string[]> {
  const all = (await (await fetch(`${receiver}/requests`)).json()) as {
    path: string;
    status: number;
    headers: Record<string, string>;
  }[];
  return all.filter((r) => r.path === pathname && (!okOnly || r.status < 300)).map((r) => r.headers['webhook-id']!);
}

/** An endpoint on the receiver for one event type of its own. */
async function endpoint(): Promise<{ type: string; path: string }> {
  const tag = randomBytes(3).toString('hex');
  const type = `drill.${tag}`;
  const pathname = `/ok/drill-${tag}`;
  const res = await api('POST', '/v1/endpoints', {
    url: `http://receiver:8080${pathname}`,
    eventTypes: [type],
    retrySchedule: ['0s', '1s', '2s', '5s', '10s', '20s', '30s'],
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { type, path: pathname };
}

async function waitReady(timeoutMs = 180_000): Promise<number> {
  const t0 = Date.now();
  await waitFor(
    () =>
      fetch(`${API}/ready`).then(
        (r) => r.status,
        () => 0,
      ),
    (s) => s === 200,
    timeoutMs,
    500,
  );
  return Date.now() - t0;
}

/** Load at 10 events/s around `fault`, then every accepted event counted at the receiver. */
async function underLoad(scenario: string, fault: () => Promise<string>) {
  const ep = await endpoint();
  const load = startLoad(API, adminKey, ep.type, 10);
  await sleep(3000);
  const what = await fault();
  await waitReady();
  await sleep(5000);
  const answers = await load.stop();
  const accepted = answers.filter((a) => a.status === 202);
  const refused = answers.filter((a) => a.status !== 202);
  // The receiver sees an event's id as its webhook-id (one endpoint per event type: one delivery each).
  const eventIds = accepted.map((a) => a.eventId!);
  const t0 = Date.now();
  await waitFor(
    () => receivedIds(ep.path),
    (got) => eventIds.every((id) => got.includes(id)),
    240_000,
    1000,
  ).catch(() => undefined);
  const counted = countDeliveries(eventIds, await receivedIds(ep.path));
  const slowest = Math.max(...answers.map((a) => a.ms));
  const codes = [...new Set(refused.map((a) => a.status))].sort().join('/');
  await record({
    scenario,
    fault: what,
    accepted: eventIds.length,
    delivered: counted.delivered,
    lost: counted.lost.length,
    duplicated: counted.duplicated.length,
    notes: `${refused.length} of ${answers.length} requests refused${refused.length ? ` (${codes})` : ''}; slowest answer ${Math.round(slowest)} ms; all delivered ${((Date.now() - t0) / 1000).toFixed(1)} s after the load stopped`,
  });
  return { answers, accepted, refused, counted, slowest };
}

describe('fault drills on the compose stack', () => {
  it('a. docker compose kill worker mid-backup and mid-deploy: both finish after up, once', async () => {
    // A dump that takes a few seconds: about 300 MB of rows in the application database.
    await appSql(
      'CREATE TABLE IF NOT EXISTS bulk (id bigserial PRIMARY KEY, pad text NOT NULL);' +
        'INSERT INTO bulk (pad) SELECT repeat(md5(g::text), 16) FROM generate_series(1, 500000) g;',
    );
    const backup = await api<{ id: string }>('POST', '/v1/backups', { database: 'shop' });
    expect(backup.status, JSON.stringify(backup.body)).toBe(202);
    await waitFor(
      () => api<{ progress?: { bytes?: number } }>('GET', `/v1/backups/${encodeURIComponent(backup.body.id)}`),
      (r) => (r.body.progress?.bytes ?? 0) > 0,
      120_000,
      200,
    );
    const version = `3.0.0-drill.${Date.now()}`;
    const deploy = await api<{ id: string }>('POST', '/v1/deploys', { target: 'shop-staging', version });
    expect(deploy.status, JSON.stringify(deploy.body)).toBe(202);
    await waitFor(
      () => api<{ live?: { samples?: unknown[] } }>('GET', `/v1/deploys/${encodeURIComponent(deploy.body.id)}`),
      (r) => (r.body.live?.samples?.length ?? 0) > 0,
      60_000,
      200,
    );
    const before = (
      await api<{ progress?: { bytes?: number } }>('GET', `/v1/backups/${encodeURIComponent(backup.body.id)}`)
    ).body.progress;
    await compose('kill', 'worker');
    const killedAt = Date.now();
    await sleep(2000);
    await compose('up', '-d', '--pull', 'never', 'worker');
    const backupDone = await waitFor(
      () =>
        api<{ status: string; locations: { store: string; key: string }[] }>(
          'GET',
          `/v1/backups/${encodeURIComponent(backup.body.id)}`,
        ),
      (r) => r.status === 200 && r.body.status !== 'running',
      600_000,
      1000,
    );
    const deployDone = await waitFor(
      () => api<{ status: string }>('GET', `/v1/deploys/${encodeURIComponent(deploy.body.id)}`),
      (r) => r.status === 200 && !['planning', 'awaiting_approval', 'running', 'pending'].includes(r.body.status),
      600_000,
      1000,
    );
    expect(backupDone.body.status, JSON.stringify(backupDone.body)).toBe('verified');
    expect(deployDone.body.status, JSON.stringify(deployDone.body)).toBe('succeeded');
    expect(((await (await fetch(`${shopweb}/staging/health`)).json()) as { version: string }).version).toBe(version);
    // Once: one catalog row for the run, one object under its final name, the deploy command's change made once.
    const minio = (await containers('minio'))[0]!;
    const name = backupDone.body.locations
      .find((l) => l.store === 's3')!
      .key.split('/')
      .at(-1)!;
    // The S3 store keeps each object as <key>._S3rver_object (unfinished multipart uploads live elsewhere).
    const objects = (
      await docker('exec', minio, 'find', '/data/opsflow-backups', '-type', 'f', '-name', '*._S3rver_object')
    )
      .split('\n')
      .filter((l) => l.includes(`/${name}.`));
    const changes = ((await (await fetch(`${shopweb}/history`)).json()) as { app: string; to: string }[]).filter(
      (h) => h.app === 'staging' && h.to === version,
    );
    const rows = await api<{ items: { id: string }[] }>('GET', '/v1/deploys?target=shop-staging');
    await record({
      scenario: 'compose a. worker kill (backup, deploy)',
      fault: `docker compose kill worker (both replicas) with a backup ${Math.round((before?.bytes ?? 0) / 1e6)} MB into its dump and a deploy in its health gate; up -d 2 s later`,
      accepted: 2,
      delivered: [backupDone.body.status === 'verified', deployDone.body.status === 'succeeded'].filter(Boolean).length,
      lost: [backupDone.body.status !== 'verified', deployDone.body.status !== 'succeeded'].filter(Boolean).length,
      duplicated:
        (objects.length > 1 ? 1 : 0) + (rows.body.items.filter((r) => r.id === deploy.body.id).length > 1 ? 1 : 0),
      notes: `backup verified ${((Date.now() - killedAt) / 1000).toFixed(0)} s after the kill at most, ${objects.length} object under its final name; deploy succeeded, its command ran ${changes.length}×`,
    });
    expect(objects).toHaveLength(1);
    expect(changes.length).toBeGreaterThanOrEqual(1);
  });

  it('b. docker compose restart temporal under 10 events/s: every accepted event delivered once', async () => {
    let restartMs = 0;
    const r = await underLoad('compose b. Temporal restart', async () => {
      const t0 = Date.now();
      await compose('restart', 'temporal');
      restartMs = Date.now() - t0;
      return `docker compose restart temporal 3 s into 10 events/s (the restart took ${(restartMs / 1000).toFixed(1)} s)`;
    });
    expect(r.accepted.length).toBeGreaterThan(50);
    expect(r.counted.lost).toEqual([]);
    expect(r.counted.duplicated).toEqual([]);
    expect(r.answers.filter((a) => a.status === 0 || (a.status >= 500 && a.status !== 503))).toEqual([]);
  });

  it('c. docker compose stop postgres for 10 s under 10 events/s: 503 fast, then recovered, every accepted event delivered once', async () => {
    const r = await underLoad('compose c. PostgreSQL stop', async () => {
      await compose('stop', 'postgres');
      const t0 = Date.now();
      await sleep(10_000);
      await compose('start', 'postgres');
      return `docker compose stop postgres 3 s into 10 events/s, start after ${((Date.now() - t0) / 1000).toFixed(0)} s (Temporal's store too)`;
    });
    expect(r.refused.length).toBeGreaterThan(0);
    expect(new Set(r.refused.map((a) => a.status))).toEqual(new Set([503]));
    expect(r.slowest).toBeLessThan(5000);
    expect(r.counted.lost).toEqual([]);
    expect(r.counted.duplicated).toEqual([]);
    // Everything answers again.
    expect((await api('GET', '/v1/status')).status).toBe(200);
  });
});
