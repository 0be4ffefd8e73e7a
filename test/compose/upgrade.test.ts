/**
 * An upgrade across releases, as an operator does it: run.sh booted the stack on the previous release's image
 * (built from its commit, tagged opsflow:local); this test gives it live work — subscriptions waiting on their
 * timers, a production deploy waiting for approval, a backup in the middle of its dump, webhooks in their retry
 * schedule, a FIFO endpoint with a queue, and events arriving all along — then points opsflow:local at the
 * current build and runs `docker compose up -d --wait` (compose recreates the worker and API containers), and
 * shows every run going on to its end on the new code: no non-determinism error, migrations applied once, no
 * accepted request lost, nothing done twice.
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { countDeliveries, report, sleep, startLoad } from '../chaos/figures.js';
import { waitFor } from '../helpers/wait.js';
import { API, MAILPIT, adminKey, api, appSql, compose, containers, docker, makeKey, peerUrl } from './stack.js';

const previous = process.env.OPSFLOW_PREVIOUS_IMAGE ?? '';
const current = process.env.OPSFLOW_CURRENT_IMAGE ?? '';
const figures = path.resolve('test-results/compose-drills.jsonl');

const imageOf = async (container: string) => (await docker('inspect', '--format', '{{.Image}}', container)).trim();
const imageId = async (ref: string) => (await docker('image', 'inspect', '--format', '{{.Id}}', ref)).trim();

async function opsflowSql(sql: string): Promise<string[][]> {
  const pg = (await containers('postgres'))[0]!;
  const out = await docker('exec', pg, 'psql', '-U', 'opsflow', '-d', 'opsflow', '-AtqX', '-c', sql);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('|'));
}

interface Received {
  path: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

describe('upgrade from the previous release', () => {
  it('moves worker and API to the current build; every run in flight finishes, once', async () => {
    expect(previous, 'run.sh sets OPSFLOW_PREVIOUS_IMAGE').not.toBe('');
    const receiver = await peerUrl('opsflow-receiver');
    const shopweb = await peerUrl('opsflow-shopweb');
    const received = async (p: string) =>
      ((await (await fetch(`${receiver}/requests`)).json()) as Received[]).filter((r) => r.path === p);
    const prevId = await imageId(previous);
    for (const id of [...(await containers('api')), ...(await containers('worker'))]) {
      expect(await imageOf(id)).toBe(prevId);
    }
    const tag = randomBytes(3).toString('hex');
    const migrationsBefore = await opsflowSql('SELECT version, applied_at FROM opsflow.schema_migrations ORDER BY 1');

    // --- live work on the previous release
    // Subscriptions whose reminder (1 min before expiry) and expiry both fall after the switch.
    const subs = [1, 2, 3].map((i) => ({ id: `upgrade-${tag}-${i}`, email: `up-${tag}-${i}@shop.example` }));
    const expiresAt = new Date(Date.now() + 180_000).toISOString();
    for (const s of subs) {
      const res = await api('PUT', `/v1/subscriptions/${s.id}`, {
        tenantId: 'shop',
        email: s.email,
        expiresAt,
        reminderOffsets: ['1m'],
        sendAt: null,
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
    // A production deploy waiting for a second key.
    const deployer = await makeKey(`up-ci-${tag}`, ['deployer']);
    const approver = await makeKey(`up-lead-${tag}`, ['approver']);
    const deploy = await api<{ id: string }>(
      'POST',
      '/v1/deploys',
      { target: 'shop-production', version: '2.0.0', skipBackup: true },
      deployer.key,
    );
    expect(deploy.status, JSON.stringify(deploy.body)).toBe(202);
    await waitFor(
      () => api<{ live?: { status: string } }>('GET', `/v1/deploys/${encodeURIComponent(deploy.body.id)}`),
      (r) => r.body.live?.status === 'awaiting_approval',
      60_000,
      500,
    );
    // Webhooks in their retry schedule: each fails twice, 20 s apart, then succeeds.
    const retryPath = `/fail/2/upgrade-${tag}`;
    const retryType = `upgrade.retry.${tag}`;
    expect(
      (
        await api('POST', '/v1/endpoints', {
          url: `http://receiver:8080${retryPath}`,
          eventTypes: [retryType],
          retrySchedule: ['0s', '20s', '20s', '20s', '30s'],
        })
      ).status,
    ).toBe(201);
    // A FIFO endpoint: its first event fails once (15 s), the others queue behind it.
    const fifoPath = `/fail/1/upgrade-fifo-${tag}`;
    const fifoType = `upgrade.fifo.${tag}`;
    const fifo = await api('POST', '/v1/endpoints', {
      url: `http://receiver:8080${fifoPath}`,
      eventTypes: [fifoType],
      ordering: 'fifo',
      retrySchedule: ['0s', '15s', '15s', '30s'],
    });
    expect(fifo.status, JSON.stringify(fifo.body)).toBe(201);
    // The receiver sees an event's id as its webhook-id (one endpoint per event type: one delivery each).
    const publish = async (type: string, n: number) => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const res = await api<{ eventId: string }>('POST', '/v1/events', {
          type,
          payload: { n: i },
          idempotencyKey: `${type}-${i}`,
        });
        expect(res.status).toBe(202);
        ids.push(res.body.eventId);
      }
      return ids;
    };
    const retryIds = await publish(retryType, 5);
    const fifoIds = await publish(fifoType, 4);
    await waitFor(
      () => received(retryPath),
      (r) => r.length >= 5,
      30_000,
      250,
    );
    // Events arriving all along, 2 a second, to an endpoint that takes them at once.
    const loadPath = `/ok/upgrade-load-${tag}`;
    const loadType = `upgrade.load.${tag}`;
    expect(
      (await api('POST', '/v1/endpoints', { url: `http://receiver:8080${loadPath}`, eventTypes: [loadType] })).status,
    ).toBe(201);
    const load = startLoad(API, adminKey, loadType, 2);
    // A backup in the middle of its dump (about 250 MB of rows).
    await appSql(
      'CREATE TABLE IF NOT EXISTS upgrade_bulk (id bigserial PRIMARY KEY, pad text NOT NULL);' +
        'INSERT INTO upgrade_bulk (pad) SELECT repeat(md5(g::text), 16) FROM generate_series(1, 500000) g;',
    );
    const backup = await api<{ id: string }>('POST', '/v1/backups', { database: 'shop' });
    expect(backup.status, JSON.stringify(backup.body)).toBe(202);
    await waitFor(
      () => api<{ progress?: { bytes?: number } }>('GET', `/v1/backups/${encodeURIComponent(backup.body.id)}`),
      (r) => (r.body.progress?.bytes ?? 0) > 0,
      120_000,
      200,
    );

    // --- the upgrade: the image compose runs as opsflow:local is now the current build
    const t0 = Date.now();
    await docker('tag', current, 'opsflow:local');
    await compose('up', '-d', '--wait', '--pull', 'never', '--wait-timeout', '300');
    const upgradeSeconds = (Date.now() - t0) / 1000;
    const curId = await imageId(current);
    for (const id of [...(await containers('api')), ...(await containers('worker'))]) {
      expect(await imageOf(id)).toBe(curId);
    }
    await sleep(5000);
    const answers = await load.stop();

    // --- every run goes on to its end on the new code
    const ok = await api('POST', `/v1/deploys/${encodeURIComponent(deploy.body.id)}/approve`, {}, approver.key);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const deployDone = await waitFor(
      () => api<{ status: string }>('GET', `/v1/deploys/${encodeURIComponent(deploy.body.id)}`),
      (r) => r.status === 200 && !['planning', 'awaiting_approval', 'running'].includes(r.body.status),
      180_000,
      1000,
    );
    expect(deployDone.body.status, JSON.stringify(deployDone.body)).toBe('succeeded');
    expect(((await (await fetch(`${shopweb}/production/health`)).json()) as { version: string }).version).toBe('2.0.0');

    const backupDone = await waitFor(
      () => api<{ status: string }>('GET', `/v1/backups/${encodeURIComponent(backup.body.id)}`),
      (r) => r.status === 200 && r.body.status !== 'running',
      600_000,
      1000,
    );
    expect(backupDone.body.status, JSON.stringify(backupDone.body)).toBe('verified');
    await appSql('DROP TABLE upgrade_bulk');

    const okIds = async (p: string) =>
      (await received(p)).filter((r) => r.status < 300).map((r) => r.headers['webhook-id']!);
    await waitFor(
      () => okIds(retryPath),
      (ids) => retryIds.every((id) => ids.includes(id)),
      180_000,
      1000,
    );
    await waitFor(
      () => okIds(fifoPath),
      (ids) => fifoIds.every((id) => ids.includes(id)),
      180_000,
      1000,
    );
    const accepted = answers.filter((a) => a.status === 202);
    const loadIds = accepted.map((a) => a.eventId!);
    await waitFor(
      () => okIds(loadPath),
      (ids) => loadIds.every((id) => ids.includes(id)),
      120_000,
      1000,
    );
    // FIFO: in publish order, each once.
    expect(await okIds(fifoPath)).toEqual(fifoIds);

    for (const s of subs) {
      await waitFor(
        () => api<{ status: string }>('GET', `/v1/subscriptions/${s.id}`),
        (r) => r.body.status === 'expired',
        240_000,
        2000,
      );
    }
    const mails = async (email: string) =>
      (
        (await (await fetch(`${MAILPIT}/api/v1/search?query=${encodeURIComponent(`to:${email}`)}`)).json()) as {
          messages: { Subject: string }[];
        }
      ).messages.map((m) => m.Subject);
    const subjects = await Promise.all(subs.map((s) => mails(s.email)));
    // A reminder and the expiry notice, each once.
    for (const list of subjects) expect(list, JSON.stringify(list)).toHaveLength(2);

    // No non-determinism on the new workers; migrations: the release's files, each applied once, old ones untouched.
    const logs = await compose('logs', '--no-color', 'worker');
    expect(logs).not.toMatch(/nondetermin/i);
    const files = (await readdir('db/migrations')).filter((f) => f.endsWith('.sql')).sort();
    const migrationsAfter = await opsflowSql('SELECT version, applied_at FROM opsflow.schema_migrations ORDER BY 1');
    expect(migrationsAfter.map((m) => m[0])).toEqual(files);
    expect(migrationsAfter.filter((m) => migrationsBefore.some((b) => b[0] === m[0]))).toEqual(migrationsBefore);

    const all = [...retryIds, ...fifoIds, ...loadIds];
    const counted = countDeliveries(all, [
      ...(await okIds(retryPath)),
      ...(await okIds(fifoPath)),
      ...(await okIds(loadPath)),
    ]);
    const refused = answers.filter((a) => a.status !== 202);
    await report(
      {
        scenario: 'compose d. upgrade to the current build',
        fault: `worker and API moved from ${previous} to ${current} by \`docker compose up -d\` (${upgradeSeconds.toFixed(0)} s until healthy) with work in flight`,
        accepted: all.length + subs.length * 2 + 2,
        delivered:
          counted.delivered +
          subjects.reduce((n, l) => n + Math.min(l.length, 2), 0) +
          (deployDone.body.status === 'succeeded' ? 1 : 0) +
          (backupDone.body.status === 'verified' ? 1 : 0),
        lost: counted.lost.length,
        duplicated: counted.duplicated.length + subjects.filter((l) => l.length > 2).length,
        notes: `${refused.length} of ${answers.length} events refused while the API container was replaced (${refused.filter((a) => a.status === 0).length} at connect: ${[...new Set(refused.filter((a) => a.status === 0).map((a) => a.cause ?? a.error))].join(', ')}; ${refused.filter((a) => a.status === 503).length} with 503); ${subs.length} subscriptions (reminder + expiry mail each), a production deploy approved after the switch, a backup verified after its dump was cut, ${retryIds.length} retrying and ${fifoIds.length} FIFO deliveries; no non-determinism; ${files.length} migrations, each once`,
      },
      figures,
    );
    expect(counted.lost).toEqual([]);
    expect(counted.duplicated).toEqual([]);
    // The one API container is replaced: while it restarts, connections fail (refused or reset by the port's
    // proxy: the request was never answered 202, so nothing accepted is at stake) or requests are answered 503 —
    // never a 500, never a request left hanging until the client's timeout.
    expect(refused.filter((a) => !(a.status === 503 || (a.status === 0 && a.error === 'fetch failed')))).toEqual([]);
  });
});
