/**
 * The `opsflow` CLI as users run it: `cli/bin.mjs` (what `npx opsflow` starts) as a child process against a
 * real API on a port, real workers, a Temporal dev server of this file's own (so it can be stopped), a
 * PostgreSQL state database of its own (so other files' dead letters don't count), real pg_dump/pg_restore
 * and a real service to deploy. One test runs the CLI under a pseudo-terminal (util-linux `script`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool, migrate } from '../lib/db.js';
import { connectClient, temporalSettings } from '../lib/temporal.js';
import { families } from '../lib/task-queues.js';
import { startDevServer, type DevServer } from '../scripts/dev-server.js';
import { declareSchedules } from '../lib/schedules/declarations.js';
import { applySchedules } from '../worker/schedules.js';
import { freePort } from './global-setup.js';
import { serviceTarget, stopServices } from './helpers/deploy-service.js';
import { dropDatabase, databaseUrlOf, queryIn, recreateDatabase } from './helpers/databases.js';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from './helpers/harness.js';

const BIN = path.resolve('cli/bin.mjs');
const tag = `${process.pid}`;
const stateDb = `opsflow_cli_state_${tag}`;
const sourceDb = `opsflow_cli_src_${tag}`;
const restoredDb = `${sourceDb}_restore_1`;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('opsflow CLI against the real stack', () => {
  let temporal: DevServer;
  let h: Harness;
  let workers: TestWorkers | undefined;
  let server: ServerType;
  let url: string;
  let dir: string;
  const ports: Record<string, number> = {};

  /** Runs `opsflow …`; `onOutput` sees stdout as it comes (to act while a command follows). */
  function cli(
    args: string[],
    opts: {
      env?: Record<string, string>;
      key?: string;
      onOutput?: (soFar: string, child: ChildProcess) => void;
    } = {},
  ): Promise<Ran> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], {
        env: {
          PATH: process.env.PATH!,
          HOME: process.env.HOME ?? os.tmpdir(),
          OPSFLOW_URL: url,
          OPSFLOW_API_KEY: opts.key ?? TEST_API_KEY,
          ...opts.env,
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child.stdin.end();
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => {
        stdout += b.toString();
        opts.onOutput?.(stdout, child);
      });
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  const target = (name: string, extra: Record<string, unknown> = {}) => serviceTarget(dir, name, ports[name]!, extra);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-cli-'));
    for (const n of ['web', 'prod', 'web-live']) ports[n] = await freePort();
    await writeFile(
      path.join(dir, 'targets.json'),
      JSON.stringify({
        targets: [
          target('web'),
          target('prod', { environment: 'production', approvalTimeoutSec: 600 }),
          // Takes web's versions once they succeeded there (no soak here).
          target('web-live', { promotesFrom: 'web', watchWindowSec: 0 }),
        ],
      }),
    );
    await recreateDatabase(stateDb);
    await recreateDatabase(sourceDb);
    await dropDatabase(restoredDb);
    await queryIn(
      sourceDb,
      `CREATE TABLE orders (id int PRIMARY KEY, total numeric);
      INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 500) g;`,
    );
    const pool = createPool(databaseUrlOf(stateDb), 2);
    await migrate(pool);
    await pool.end();
    temporal = await startDevServer({ bin: inject('temporalCliPath'), port: await freePort(), namespace: 'default' });
    h = await createHarness({
      DATABASE_URL: databaseUrlOf(stateDb),
      TEMPORAL_ADDRESS: temporal.address,
      BACKUP_DATABASE_URLS: databaseUrlOf(sourceDb),
      DEPLOY_TARGETS_FILE: path.join(dir, 'targets.json'),
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
    });
    await applySchedules(h.client, declareSchedules(h.config, h.queues));
    workers = await startWorkers(h, [...families]);
    const port = await freePort();
    server = serve({ fetch: testApp(h).fetch, port, hostname: '127.0.0.1' });
    url = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    server?.close();
    await workers?.stop();
    await h?.close();
    await temporal?.stop();
    await stopServices(dir, Object.keys(ports));
    for (const db of [stateDb, sourceDb, restoredDb]) await dropDatabase(db);
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses bad usage with exit 2 and says why, before calling the API', async () => {
    const noKey = await cli(['status'], { key: '' });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/no API key: set OPSFLOW_API_KEY/);
    const both = await cli(['deploy', 'web', '-v', '1.0.0', '-t', 'minor']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/exactly one of -v VERSION and -t/);
    const unknown = await cli(['deploi', 'web']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'deploi'/);
    const badTimeout = await cli(['backup', '--timeout', 'soon']);
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toMatch(/--timeout must be a duration/);
    // The key never crosses a network in clear unless the operator says so.
    const plain = await cli(['deploys'], { env: { OPSFLOW_URL: 'http://api.invalid:3000' } });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/refusing to send the API key to api\.invalid:3000 over plain http/);
    const insecure = await cli(['deploys', '--insecure'], { env: { OPSFLOW_URL: 'http://api.invalid:3000' } });
    expect(insecure.stderr).toMatch(/cannot reach the opsflow API at http:\/\/api\.invalid:3000/);
    const byEnv = await cli(['deploys'], {
      env: { OPSFLOW_URL: 'http://api.invalid:3000', OPSFLOW_INSECURE: '1' },
    });
    expect(byEnv.stderr).toMatch(/cannot reach/);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:[\s\S]*130 {2}Ctrl-C/);
    // Nothing was started by any of them.
    expect(await queryIn(stateDb, 'SELECT id FROM opsflow.deploys')).toEqual([]);
  });

  it('prints the API error with its request id and exits 3 (wrong key, unknown target)', async () => {
    const wrongKey = await cli(['deploys'], { key: 'not-a-key' });
    expect(wrongKey.code).toBe(3);
    expect(wrongKey.stderr).toMatch(/HTTP 401 unauthorized, request [\w-]+/);
    const unknown = await cli(['deploy', 'nowhere', '-v', '1.0.0', '--json']);
    expect(unknown.code).toBe(3);
    const envelope = JSON.parse(unknown.stdout) as { error: { code: string; requestId: string; message: string } };
    expect(envelope.error).toMatchObject({ code: 'not_found' });
    expect(envelope.error.requestId).toBeTruthy();
    const unreachable = await cli(['backups'], { env: { OPSFLOW_URL: 'http://127.0.0.1:1' } });
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(/cannot reach the opsflow API at http:\/\/127\.0\.0\.1:1/);
  });

  it('status exits 1 naming the missing backup; backup follows to verified; then status exits 0', async () => {
    const before = await cli(['status']);
    expect(before.code).toBe(1);
    expect(before.stdout).toContain(`${sourceDb} has no verified backup`);

    const backup = await cli(['backup']);
    expect(backup.stderr).toBe('');
    expect(backup.code, backup.stdout + backup.stderr).toBe(0);
    expect(backup.stdout).toMatch(/backup backup:opsflow_cli_src_\d+:\S+ started/);
    expect(backup.stdout).toMatch(/▸ dump/);
    expect(backup.stdout).toMatch(/▸ verify/);
    expect(backup.stdout).toMatch(/1\/1 tables have the same row count after a restore/);
    expect(backup.stdout).toMatch(/✔ backup \S+ verified: [\d.]+ KiB/);
    // No colours and no spinner off a terminal.
    expect(backup.stdout + backup.stderr).not.toContain('\u001b[');

    const after = await cli(['status', '--json']);
    const report = JSON.parse(after.stdout) as {
      ok: boolean;
      problems: string[];
      backups: { database: string; stale: boolean }[];
      workers: Record<string, number>;
    };
    expect(report.problems).toEqual([]);
    expect(after.code).toBe(0);
    expect(report.backups).toEqual([expect.objectContaining({ database: sourceDb, stale: false })]);
    for (const f of families) expect(report.workers[f]).toBeGreaterThan(0);

    const list = await cli(['backups', '--json']);
    const items = (JSON.parse(list.stdout) as { items: { status: string; database: string }[] }).items;
    expect(items[0]).toMatchObject({ status: 'verified', database: sourceDb });
  });

  it('restore changes nothing without the typed confirmation, then restores with it', async () => {
    const [latest] = await queryIn<{ id: string }>(
      stateDb,
      `SELECT id FROM opsflow.backups WHERE status = 'verified' ORDER BY started_at DESC LIMIT 1`,
    );
    expect(latest).toBeDefined();
    const noConfirm = await cli(['restore', latest!.id, restoredDb]);
    expect(noConfirm.code).toBe(2);
    expect(noConfirm.stderr).toMatch(new RegExp(`pass --confirm ${restoredDb}.*nothing was changed`));
    const wrong = await cli(['restore', latest!.id, restoredDb, '--confirm', sourceDb]);
    expect(wrong.code).toBe(2);
    const exists = async () =>
      (await queryIn('postgres', `SELECT 1 FROM pg_database WHERE datname = '${restoredDb}'`)).length > 0;
    expect(await exists()).toBe(false);
    expect(await queryIn(stateDb, 'SELECT id FROM opsflow.restores')).toEqual([]);

    const ok = await cli(['restore', latest!.id, restoredDb, '--confirm', restoredDb, '--json']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const events = ok.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; restore?: { status: string } });
    expect(events[0]!.event).toBe('started');
    expect(events.at(-1)).toMatchObject({ event: 'result', restore: { status: 'restored' } });
    expect(await queryIn<{ n: string }>(restoredDb, 'SELECT count(*) AS n FROM orders')).toEqual([{ n: '500' }]);
  });

  it('a good deploy exits 0 after its health gate; a bad one exits 1 after the rollback', async () => {
    const good = await cli(['deploy', 'web', '-v', '1.0.0']);
    expect(good.stderr).toBe('');
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toMatch(/▸ health-gate 1\.0\.0/);
    expect(good.stdout).toMatch(/✔ gate HTTP 200 \d+ ms version 1\.0\.0/);
    expect(good.stdout).toMatch(/✔ deploy of web 1\.0\.0 succeeded/);

    const bad = await cli(['deploy', 'web', '-v', '1.1.0-bad500', '--json']);
    expect(bad.code, bad.stdout + bad.stderr).toBe(1);
    const lines = bad.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.event === 'sample' && l.ok === false).length).toBeGreaterThanOrEqual(2);
    expect(lines.some((l) => l.event === 'step' && l.step === 'rollback')).toBe(true);
    expect(lines.at(-1)).toMatchObject({
      event: 'result',
      deploy: { status: 'rolled_back', previousVersion: '1.0.0' },
    });
    expect(await readFile(path.join(dir, 'web', 'version'), 'utf8')).toBe('1.0.0\n');

    const dry = await cli(['deploy', 'web', '-t', 'minor', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/1\.0\.0 → 1\.1\.0/);
    expect(dry.stdout).toMatch(/nothing was changed/);

    const history = await cli(['deploys', '--target', 'web', '--json']);
    expect((JSON.parse(history.stdout) as { items: { status: string }[] }).items.map((d) => d.status)).toEqual([
      'rolled_back',
      'succeeded',
    ]);

    // Promotion: web runs 1.0.0 again (1.1.0-bad500 rolled back), and web-live takes it; web promotes from nothing.
    const targets = await cli(['deploys', '--targets']);
    expect(targets.stdout).toMatch(/web-live .*web 1\.0\.0 \(good\) → —/);
    const refused = await cli(['promote', 'web']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/web promotes from no target \(promotesFrom is not set\)/);
    const unstaged = await cli(['deploy', 'web-live', '-v', '1.1.0-bad500']);
    expect(unstaged.code).toBe(3);
    expect(unstaged.stderr).toMatch(/has not; deploy it to web first/);
    const promoted = await cli(['promote', 'web-live']);
    expect(promoted.code, promoted.stdout + promoted.stderr).toBe(0);
    expect(promoted.stdout).toMatch(/promotion deploy:web-live:\S+ started/);
    expect(promoted.stdout).toMatch(/✔ deploy of web-live 1\.0\.0 succeeded/);
  });

  it('a production deploy waits for approval by another key, made with `keys create`, and then succeeds', async () => {
    const made = await cli(['keys', 'create', 'cli-approver', '-s', 'approver', '--json']);
    expect(made.code).toBe(0);
    const approverKey = (JSON.parse(made.stdout) as { key: string }).key;
    const self = { tried: false, code: null as number | null, stderr: '' };
    let approved: Promise<Ran> | undefined;
    const deploy = await cli(['deploy', 'prod', '-v', '2.0.0', '--skip-backup'], {
      onOutput: (soFar) => {
        const id = /waiting for approval by another key: opsflow approve (\S+)/.exec(soFar)?.[1];
        if (id && !approved) {
          // The requesting key may not approve its own deploy (four-eyes); the approver key may.
          approved = cli(['approve', id]).then(async (r) => {
            self.tried = true;
            self.code = r.code;
            self.stderr = r.stderr;
            return cli(['approve', id, '-m', 'looks right'], { key: approverKey });
          });
        }
      },
    });
    expect(self.tried).toBe(true);
    expect(self.code).toBe(3);
    expect(self.stderr).toMatch(/four-eyes/);
    expect((await approved!).code).toBe(0);
    expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);
    expect(deploy.stdout).toMatch(/✔ deploy of prod 2\.0\.0 succeeded/);
  });

  it('portal-link prints a one-time link for a tenant; a bad --expires-in is a usage error, a tenant key refused', async () => {
    const made = await cli(['portal-link', 'acme', '--expires-in', '2h']);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout.trim()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/portal\/open\/[\w-]{43}$/);
    expect(made.stderr).toMatch(/opens once, until .* as key key_\w+ \(read, endpoints:write, deliveries:redrive\)/);
    const opened = await fetch(made.stdout.trim(), { redirect: 'manual' });
    expect(opened.status).toBe(200);
    expect(await opened.text()).toContain('Open the portal');
    const bad = await cli(['portal-link', 'acme', '--expires-in', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--expires-in must be an age/);
    const tenantKey = JSON.parse(
      (await cli(['keys', 'create', 'acme-admin', '-s', 'admin', '--tenant', 'acme', '--json'])).stdout,
    ) as { key: string };
    const refused = await cli(['portal-link', 'acme'], { key: tenantKey.key });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/HTTP 403 forbidden/);
  });

  it('audit: who did what, filtered; bad filters are usage errors or the API refusal', async () => {
    const made = await cli(['keys', 'create', 'cli-audited', '-s', 'read', '--json']);
    expect(made.code).toBe(0);
    const id = (JSON.parse(made.stdout) as { id: string }).id;
    const listed = await cli(['audit', '--action', 'createApiKey', '--resource', `api-keys/${id}`]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(
      new RegExp(`env-1 \\(env_\\w+\\)\\s+createApiKey\\s+api-keys/${id}\\s+succeeded 201\\s+api`),
    );
    const json = await cli(['audit', '--resource', 'api-keys/*', '--limit', '1', '--json']);
    const page = JSON.parse(json.stdout) as { items: { action: string }[]; nextCursor: string | null };
    expect(page.items).toHaveLength(1);
    const badTime = await cli(['audit', '--since', 'soon']);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toMatch(/--since is not a time/);
    expect((await cli(['audit', '--limit', '0'])).code).toBe(2);
    const badOutcome = await cli(['audit', '--outcome', 'maybe']);
    expect(badOutcome.code).toBe(3);
    expect(badOutcome.stderr).toMatch(/HTTP 400 validation_failed/);
  });

  it('--timeout and Ctrl-C detach (exit 4, 130) and `watch` follows the same run to its end', async () => {
    const started = await cli(['deploy', 'web', '-v', '1.2.0', '--timeout', '1s']);
    expect(started.code).toBe(4);
    const id = /opsflow watch (\S+)/.exec(started.stderr)?.[1];
    expect(id).toMatch(/^deploy:web:/);
    const watched = await cli(['watch', id!]);
    expect(watched.code, watched.stdout + watched.stderr).toBe(0);
    expect(watched.stdout).toMatch(/✔ deploy of web 1\.2\.0 succeeded/);
    // Ctrl-C while following detaches too: exit 130, the deploy goes on, and `watch` picks it up again.
    let interrupted = false;
    const detached = await cli(['deploy', 'web', '-v', '1.3.0'], {
      onOutput: (soFar, child) => {
        if (!interrupted && soFar.includes('▸ health-gate')) {
          interrupted = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(detached.code, detached.stdout + detached.stderr).toBe(130);
    expect(detached.stderr).toMatch(/detached \(Ctrl-C\): deploy:web:\S+ goes on/);
    const again = /opsflow watch (\S+)/.exec(detached.stderr)?.[1];
    const rewatched = await cli(['watch', again!]);
    expect(rewatched.code, rewatched.stdout).toBe(0);
    expect(rewatched.stdout).toMatch(/✔ deploy of web 1\.3\.0 succeeded/);
    const nonsense = await cli(['watch', 'something-else']);
    expect(nonsense.code).toBe(2);
  });

  it('draws progress on a terminal (a pseudo-terminal), and honours NO_COLOR', async () => {
    const run = (env: string) =>
      new Promise<Ran>((resolve) => {
        const cmd = `stty cols 120 rows 40; ${env} OPSFLOW_URL=${url} OPSFLOW_API_KEY=${TEST_API_KEY} ${process.execPath} ${BIN} backup`;
        const child = spawn('script', ['-qefc', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr: '' }));
      });
    const tty = await run('');
    expect(tty.code, tty.stdout.slice(-2000)).toBe(0);
    expect(tty.stdout).toMatch(/backup of opsflow_cli_src_\d+: (dump|verify)/); // the spinner's text
    expect(tty.stdout).toContain('\u001b[32m✔'); // green tick
    const plain = await run('NO_COLOR=1');
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('\u001b[32m');
  });

  it('subscriptions import: rejected lines named, a rerun unchanged, a line that is not JSON sends nothing', async () => {
    const expiresAt = new Date(Date.now() + 30 * 86_400_000).toISOString();
    const sub = (id: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ id, tenantId: 'cli', email: `${id}@example.com`, expiresAt, ...extra });
    const file = path.join(dir, 'customers.jsonl');
    await writeFile(file, [sub('cli-imp-1'), '', sub('cli-imp-2', { email: 'nope' }), sub('cli-imp-3')].join('\n'));
    // Batches of 2: the rejected line's number is right across batches.
    const first = await cli(['subscriptions', 'import', file, '--batch-size', '2']);
    expect(first.code).toBe(1); // one rejected
    expect(first.stdout).toContain(`${file}:3 cli-imp-2: email: `);
    expect(first.stdout).toMatch(/3 subscriptions: 2 created, 0 unchanged, 1 rejected/);
    const again = await cli(['subscriptions', 'import', file, '--json']);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout)).toMatchObject({
      created: 0,
      unchanged: 2,
      rejected: 1,
      total: 3,
      rejectedItems: [{ at: 3, id: 'cli-imp-2', code: 'validation_failed' }],
    });
    const stored = await queryIn<{ id: string }>(
      stateDb,
      `SELECT id FROM opsflow.subscriptions WHERE tenant_id = 'cli' ORDER BY id`,
    );
    expect(stored.map((r) => r.id)).toEqual(['cli-imp-1', 'cli-imp-3']);

    await writeFile(file, [sub('cli-imp-4'), '{not json'].join('\n'));
    const broken = await cli(['subscriptions', 'import', file]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/line 2 is not JSON .*nothing was sent/);
    const size = await cli(['subscriptions', 'import', file, '--batch-size', '5000']);
    expect(size.code).toBe(2);
    expect(await queryIn(stateDb, `SELECT 1 FROM opsflow.subscriptions WHERE id = 'cli-imp-4'`)).toEqual([]);
  });

  it('events publish, deliveries and schedules round-trip; status exits 1 once Temporal is stopped', async () => {
    const pub = await cli(['events', 'publish', 'cli.test', '{"n":1}', '--json']);
    expect(pub.code).toBe(0);
    const published = JSON.parse(pub.stdout) as { eventId: string; deliveries: unknown[] };
    expect(published.eventId).toMatch(/\S/);
    expect(published.deliveries).toEqual([]);
    const badJson = await cli(['events', 'publish', 'cli.test', '{nope']);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toMatch(/the payload is not JSON/);
    // Finding it again: listed under its type's prefix, shown with its payload; an unknown one is the API's 404.
    const listed = await cli(['events', 'list', '--type', 'cli.*', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { items: { id: string }[] }).items.map((e) => e.id)).toContain(
      published.eventId,
    );
    const shown = await cli(['events', 'show', published.eventId, '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: published.eventId, type: 'cli.test', payload: { n: 1 } });
    const unknown = await cli(['events', 'show', 'evt_nope']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/not found/);
    expect((await cli(['events', 'list', '--since', 'yesterday-ish'])).code).toBe(2);

    // recover: an endpoint with nothing failed in the window is followed to its end at once; bad input is a usage
    // error, an unknown endpoint the API's 404.
    const made = await fetch(`${url}/v1/endpoints`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'http://127.0.0.1:9/cli' }),
    });
    const endpointId = ((await made.json()) as { id: string }).id;
    const recovered = await cli(['recover', endpointId, '--since', '1h']);
    expect(recovered.code, recovered.stderr).toBe(0);
    expect(recovered.stdout).toMatch(/recover rcv_\w+ started: 0 deliveries/);
    expect(recovered.stdout).toMatch(/✔ recover rcv_\w+: 0 deliveries sent again/);
    expect((await cli(['recover', endpointId, '--since', 'soon'])).code).toBe(2);
    expect((await cli(['recover', endpointId])).code).toBe(2);
    // The event catalogue: listed and shown; an unknown type is the API's 404.
    await fetch(`${url}/v1/event-types`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'cli.test',
        description: 'what the CLI test publishes',
        schema: { type: 'object' },
      }),
    });
    const catalogue = await cli(['event-types', 'list']);
    expect(catalogue.code, catalogue.stderr).toBe(0);
    expect(catalogue.stdout).toMatch(/cli\.test\s+yes\s+what the CLI test publishes/);
    const entry = await cli(['event-types', 'show', 'cli.test', '--json']);
    expect(JSON.parse(entry.stdout)).toMatchObject({ name: 'cli.test', schema: { type: 'object' } });
    expect((await cli(['event-types', 'show', 'nope.type'])).code).toBe(3);
    const nowhere = await cli(['recover', 'ep_nope', '--since', '1h']);
    expect(nowhere.code).toBe(3);
    expect(nowhere.stderr).toMatch(/endpoint ep_nope not found/);

    const paused = await cli(['schedules', 'pause', 'opsflow:backup-freshness', '--note', 'cli test']);
    expect(paused.code).toBe(0);
    const withNotice = await cli(['status']);
    expect(withNotice.code).toBe(0); // a paused schedule is a notice, not a problem
    expect(withNotice.stdout).toMatch(/! schedule opsflow:backup-freshness is paused: cli test/);
    expect((await cli(['schedules', 'unpause', 'opsflow:backup-freshness'])).code).toBe(0);

    // The API that will see Temporal gone gets a connection of its own, left open: the SDK retries the failed
    // calls on a timer, and a retry that fires after close() throws into a closed channel.
    const client = await connectClient(temporalSettings(h.config));
    const port = await freePort();
    const witness = serve({ fetch: testApp(h, { temporal: client }).fetch, port, hostname: '127.0.0.1' });
    await workers!.stop();
    workers = undefined;
    await temporal.stop();
    const started = Date.now();
    const down = await cli(['status'], { env: { OPSFLOW_URL: `http://127.0.0.1:${port}` } });
    witness.close();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/✗ Temporal/);
    expect(down.stdout).toMatch(/Temporal unreachable/);
  });
});
