/**
 * Deploys against a real service process on loopback (test/fixtures/deploy): the deploy command stops the
 * running version and starts the new one; misbehaving versions answer 500, report the wrong version, die,
 * or fail later. Real Temporal, real PostgreSQL, real SMTP capture.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, expectTypeOf, inject, it } from 'vitest';
import { loadConfig, ConfigError } from '../../lib/config.js';
import { envKeyId } from '../../lib/keys/store.js';
import {
  approveUpdate,
  DEPLOY_WORKFLOW,
  deployWorkflowId,
  type DeployResult,
  type DeployWorkflow,
} from '../../lib/deploys/contract.js';
import type { deployTarget } from '../../workflows/deploys/workflow.js';
import { bumpVersion, gateStep } from '../../lib/deploys/plan.js';
import { freePort } from '../global-setup.js';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from '../helpers/harness.js';
import { internalKey } from '../../lib/webhooks/ops-events.js';
import { authHeaders } from '../helpers/api.js';
import { saveHistory } from '../helpers/histories.js';
import { serviceTarget, stopServices } from '../helpers/deploy-service.js';
import { harnessEnv, spawnEntry } from '../helpers/processes.js';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.js';
import { uiView } from '../helpers/ui.js';
import { waitFor } from '../helpers/wait.js';

const ownDb = () => new URL(inject('databaseUrl')).pathname.slice(1);

describe('deploy rules (pure)', () => {
  it('the workflow has the signature its contract declares (typed starts go through the contract)', () => {
    expectTypeOf<typeof deployTarget>().toEqualTypeOf<DeployWorkflow>();
  });

  it.each([
    ['1.4.2', 'patch', '1.4.3'],
    ['1.4.2', 'minor', '1.5.0'],
    ['1.4.2', 'major', '2.0.0'],
    ['v2.0.9-rc.1', 'patch', 'v2.0.10'],
    ['latest', 'patch', undefined],
  ] as const)('bump %s %s → %s', (from, bump, to) => {
    expect(bumpVersion(from, bump)).toBe(to);
  });

  it('passes after N good samples in a row and fails after M bad ones in a row', () => {
    const t = { successThreshold: 2, failureThreshold: 2 };
    let c = { consecutiveOk: 0, consecutiveBad: 0 };
    const run = (oks: boolean[]) =>
      oks.map((ok) => {
        const r = gateStep(c, ok, t);
        c = r.counters;
        return r.verdict;
      });
    expect(run([true, false, true, true])).toEqual(['continue', 'continue', 'continue', 'pass']);
    c = { consecutiveOk: 0, consecutiveBad: 0 };
    expect(run([false, true, false, false])).toEqual(['continue', 'continue', 'continue', 'fail']);
  });

  it('validates the targets file at start, naming the target and field', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'targets-'));
    const file = path.join(dir, 'targets.json');
    const env = { DATABASE_URL: 'postgres://u@h:5432/db', DEPLOY_TARGETS_FILE: file };
    await writeFile(
      file,
      JSON.stringify([{ name: 'web', environment: 'prod', commands: {}, health: { url: 'ftp://x' } }]),
    );
    expect(() => loadConfig(env)).toThrow(ConfigError);
    try {
      loadConfig(env);
    } catch (err) {
      const text = (err as ConfigError).problems.join('\n');
      expect(text).toMatch(/web\.environment/);
      expect(text).toMatch(/web\.commands\.deploy/);
      expect(text).toMatch(/web\.health\.url/);
    }
    await writeFile(file, '{ not json');
    expect(() => loadConfig(env)).toThrow(/not valid JSON/);
    await writeFile(
      file,
      JSON.stringify([
        {
          name: 'db',
          environment: 'staging',
          backupDatabase: 'elsewhere',
          commands: { deploy: 'true' },
          health: { url: 'http://x/h' },
        },
      ]),
    );
    expect(() => loadConfig(env)).toThrow(/db\.backupDatabase: elsewhere is not in BACKUP_DATABASE_URLS/);
    expect(() => loadConfig({ ...env, DEPLOY_TARGETS_FILE: path.join(dir, 'missing.json') })).toThrow(/does not exist/);
    // Production needs approval unless it says otherwise.
    await writeFile(
      file,
      JSON.stringify([
        { name: 'p', environment: 'production', commands: { deploy: 'true' }, health: { url: 'http://x/h' } },
      ]),
    );
    expect(loadConfig(env).deploys.targets[0]).toMatchObject({ requiresApproval: true, timeoutSec: 600 });
    await rm(dir, { recursive: true });
  });
});

describe('deploy workflow against a real service', () => {
  let h: Harness;
  let workers: TestWorkers;
  let smtp: SmtpCapture;
  let dir: string;
  const ports: Record<string, number> = {};
  const auth = authHeaders();

  const target = (name: string, extra: Record<string, unknown> = {}) => serviceTarget(dir, name, ports[name]!, extra);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-deploy-'));
    const names = [
      'web',
      'fragile',
      'prod',
      'prod-quick',
      'solo',
      'envcheck',
      'guarded',
      'locked',
      'crashy',
      'reported',
    ];
    for (const n of names) ports[n] = await freePort();
    smtp = await startSmtpCapture();
    const targets = [
      target('web'),
      // The watch window outlasts the 3 s the *dies* version lives, whatever the machine's load: a death is
      // caught by the gate or by the watch, and either way the broken rollback follows.
      target('fragile', {
        commands: { ...target('fragile').commands, rollback: 'echo "rollback broke" >&2; exit 1' },
        watchWindowSec: 8,
      }),
      target('prod', { environment: 'production', approvalTimeoutSec: 3600 }),
      target('prod-quick', { environment: 'production', approvalTimeoutSec: 2 }),
      target('solo', { environment: 'production', allowSelfApproval: true, watchWindowSec: 0 }),
      // Its currentVersion command shows what environment a target's commands get.
      {
        ...target('envcheck'),
        env: { GREETING: 'declared' },
        commands: { deploy: 'true', currentVersion: `env > ${path.join(dir, 'envcheck.txt')}; echo 1.0.0` },
      },
      // Its pre-deploy backup fails: the harness points PG_BIN_DIR where there is no pg_dump.
      target('guarded', { backupDatabase: ownDb() }),
      target('locked'),
      target('crashy', { watchWindowSec: 6 }),
      target('reported', { watchWindowSec: 0 }),
    ];
    const file = path.join(dir, 'targets.json');
    await writeFile(file, JSON.stringify({ targets }, null, 2));
    h = await createHarness({
      DEPLOY_TARGETS_FILE: file,
      SMTP_URL: smtp.url,
      OPS_EMAIL: 'ops@example.com',
      BACKUP_DATABASE_URLS: inject('databaseUrl'),
      PG_BIN_DIR: path.join(dir, 'no-pg-here'),
    });
    workers = await startWorkers(h, ['deploys', 'backups', 'webhooks']);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await smtp?.close();
    await stopServices(dir, Object.keys(ports));
    await rm(dir, { recursive: true, force: true });
  });

  const api = (p: string, body?: unknown, method = body === undefined ? 'GET' : 'POST', key = TEST_API_KEY) =>
    testApp(h).request(p, {
      method,
      headers: { ...auth, authorization: `Bearer ${key}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  /** A key made through the API, as an operator would: its key and id. */
  async function makeKey(name: string, scopes: string[]): Promise<{ key: string; id: string }> {
    const res = await api('/v1/api-keys', { name, scopes });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as { key: string; id: string };
  }
  async function deploy(body: Record<string, unknown>): Promise<string> {
    const res = await api('/v1/deploys', body);
    expect(res.status, await res.clone().text()).toBe(202);
    return ((await res.json()) as { id: string }).id;
  }
  async function finished(id: string): Promise<DeployResult> {
    const { rows } = await h.pool.query<{ workflow_id: string; run_id: string }>(
      'SELECT workflow_id, run_id FROM opsflow.deploys WHERE id = $1',
      [id],
    );
    return (await h.client.workflow.getHandle(rows[0]!.workflow_id, rows[0]!.run_id).result()) as DeployResult;
  }
  async function serving(name: string): Promise<string | null> {
    try {
      const res = await fetch(`http://127.0.0.1:${ports[name]}/health`, { signal: AbortSignal.timeout(1000) });
      return ((await res.json()) as { version: string }).version;
    } catch {
      return null;
    }
  }
  async function live(id: string): Promise<{ status: string; live: { step: string; status: string } | null }> {
    return (await (await api(`/v1/deploys/${encodeURIComponent(id)}`)).json()) as {
      status: string;
      live: { step: string; status: string } | null;
    };
  }

  it('lists the targets without their commands', async () => {
    const body = (await (await api('/v1/deploy-targets')).json()) as { items: Record<string, unknown>[] };
    expect(body.items.map((t) => t.name)).toContain('web');
    expect(body.items.find((t) => t.name === 'prod')).toMatchObject({
      requiresApproval: true,
      environment: 'production',
    });
    expect(JSON.stringify(body)).not.toContain('deploy.sh');
  });

  it('a good deploy succeeds, the new version serves, history, email and a deploy.succeeded event are recorded', async () => {
    const id = await deploy({ target: 'web', version: '1.0.0' });
    const result = await finished(id);
    expect(result.status, result.reason).toBe('succeeded');
    expect(await serving('web')).toBe('1.0.0');
    // The gate passed on two good samples in a row (an earlier one may have found the service still starting).
    expect(
      result.samples
        .filter((s) => s.phase === 'gate')
        .slice(-2)
        .map((s) => s.ok),
    ).toEqual([true, true]);
    expect(result.samples.some((s) => s.phase === 'watch')).toBe(true);
    expect(result.timeline.map((e) => e.step)).toEqual(['plan', 'deploy', 'health-gate', 'watch', 'done']);
    const row = (await (await api(`/v1/deploys/${encodeURIComponent(id)}`)).json()) as Record<string, unknown>;
    expect(row).toMatchObject({
      status: 'succeeded',
      version: '1.0.0',
      previousVersion: null,
      finishedAt: expect.any(String) as string,
    });
    const events = await h.pool.query<{ type: string }>(
      `SELECT type FROM opsflow.webhook_events WHERE idempotency_key = $1`,
      [internalKey(`deploy:${id}:succeeded`)],
    );
    expect(events.rows).toEqual([{ type: 'deploy.succeeded' }]);
    await waitFor(
      () => smtp.messages.some((m) => m.subject === '[opsflow] deploy web 1.0.0: succeeded'),
      Boolean,
      5000,
    );
    await saveHistory(deployWorkflowId('web'), 'deploys/succeeded.json');
  }, 60_000);

  it('dry run returns the plan (with a bump) and changes nothing', async () => {
    const before = await readFile(path.join(dir, 'web', 'pid'), 'utf8');
    const res = await api('/v1/deploys', { target: 'web', bump: 'minor', dryRun: true });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { plan: { version: string; previousVersion: string; steps: string[] } };
    expect(body.plan).toMatchObject({ version: '1.1.0', previousVersion: '1.0.0' });
    expect(body.plan.steps.join('\n')).toMatch(/roll back to 1\.0\.0/);
    expect(await readFile(path.join(dir, 'web', 'pid'), 'utf8')).toBe(before);
    const rows = await h.pool.query(`SELECT 1 FROM opsflow.deploys WHERE target = 'web'`);
    expect(rows.rowCount).toBe(1);
  });

  it('refuses bad input: a version that could reach the shell, unknown target, version and bump together', async () => {
    for (const version of ['1.0; rm -rf /', '$(id)', '`id`', '1.0 2', '', '-rf', '--help', '1..2', '../../etc']) {
      const res = await api('/v1/deploys', { target: 'web', version });
      expect(res.status, version).toBe(422);
    }
    expect((await api('/v1/deploys', { target: 'nope', version: '1' })).status).toBe(404);
    expect((await api('/v1/deploys', { target: 'web', version: '1', bump: 'patch' })).status).toBe(422);
    expect((await api('/v1/deploys', { target: 'web' })).status).toBe(422);
    expect((await api('/v1/deploy-targets/web/rollback', { toVersion: '$(id)', reason: 'x' })).status).toBe(422);
    const rows = await h.pool.query(`SELECT 1 FROM opsflow.deploys WHERE target = 'web'`);
    expect(rows.rowCount).toBe(1);
  });

  it("commands come from the worker's targets file: a workflow started by hand with commands in its input runs nothing", async () => {
    const marker = (n: number) => path.join(dir, `input-command-ran-${n}`);
    const evil = (name: string) => ({
      ...target(name),
      commands: {
        deploy: `touch ${marker(1)}`,
        rollback: `touch ${marker(2)}`,
        currentVersion: `touch ${marker(3)}; echo 6.6.6`,
      },
    });
    const startByHand = (name: string, extra: Record<string, unknown> = {}) =>
      h.client.workflow.execute(DEPLOY_WORKFLOW, {
        taskQueue: h.queues.deploys,
        workflowId: `deploy:${name}:by-hand:${Date.now()}`,
        args: [{ id: `deploy:${name}:by-hand`, kind: 'deploy', target: evil(name), version: '6.6.6', ...extra }],
      }) as Promise<DeployResult>;
    // A target the worker does not declare: refused at the plan, nothing runs.
    const unknown = await startByHand('not-declared');
    expect(unknown.status).toBe('aborted');
    expect(unknown.reason).toMatch(/not-declared is not declared in this worker's DEPLOY_TARGETS_FILE/);
    // A declared target with other commands in the input: the worker's own are used (here: no currentVersion).
    const planned = await startByHand('prod-quick', { dryRun: true });
    expect(planned.plan).toMatchObject({ target: 'prod-quick', previousVersion: null, version: '6.6.6' });
    for (const n of [1, 2, 3]) await expect(readFile(marker(n))).rejects.toThrow(/ENOENT/);
  });

  it("a target's commands get PATH, HOME, the deploy's variables and the target's env, nothing else", async () => {
    process.env.OPSFLOW_PROBE_SECRET = 'must-not-leak';
    try {
      const res = await api('/v1/deploys', { target: 'envcheck', version: '2.0.0', dryRun: true });
      expect(res.status, await res.clone().text()).toBe(200);
    } finally {
      delete process.env.OPSFLOW_PROBE_SECRET;
    }
    const env = Object.fromEntries(
      (await readFile(path.join(dir, 'envcheck.txt'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env).toMatchObject({ TARGET: 'envcheck', GREETING: 'declared', PATH: process.env.PATH });
    for (const leaked of ['OPSFLOW_PROBE_SECRET', 'DATABASE_URL', 'OPSFLOW_API_KEYS', 'SMTP_URL']) {
      expect(env[leaked], leaked).toBeUndefined();
    }
    // sh adds PWD, SHLVL and _ of its own; nothing else came from the worker.
    const allowed = [
      'GREETING',
      'PATH',
      'TARGET',
      'HOME',
      'VERSION',
      'PREVIOUS_VERSION',
      'PWD',
      'SHLVL',
      '_',
      'OLDPWD',
    ];
    expect(Object.keys(env).filter((k) => !allowed.includes(k))).toEqual([]);
  });

  it('a bad deploy is detected and rolled back; the previous version serves again', async () => {
    const id = await deploy({ target: 'web', version: '1.1.0-bad500' });
    const result = await finished(id);
    expect(result.status, result.reason).toBe('rolled_back');
    expect(result.reason).toMatch(/2 consecutive failed health checks/);
    expect(await serving('web')).toBe('1.0.0');
    expect(result.rollback?.exitCode).toBe(0);
    expect(result.samples.filter((s) => s.phase === 'rollback-gate').at(-1)?.ok).toBe(true);
    // Detection within intervalSec × (failureThreshold + 1) plus the command; recovery well under 30 s.
    expect(result.detectionMs).toBeLessThan(1000 * (2 + 1) + 3000);
    expect(result.recoveryMs).toBeLessThan(30_000);
    expect(smtp.messages.some((m) => m.subject === '[opsflow] deploy web 1.1.0-bad500: rolled back')).toBe(true);
    await saveHistory(deployWorkflowId('web'), 'deploys/rolled-back.json');

    const wrong = await finished(await deploy({ target: 'web', version: '1.1.0-wrongver' }));
    expect(wrong.status).toBe('rolled_back');
    expect(wrong.samples.filter((s) => s.phase === 'gate').at(-1)?.error).toMatch(
      /version other, expected 1\.1\.0-wrongver/,
    );
    const failing = await finished(await deploy({ target: 'web', version: '1.1.0-failcmd' }));
    expect(failing.status).toBe('rolled_back');
    expect(failing.deploy?.outputTail).toMatch(/deploy of 1\.1\.0-failcmd failed/);
    expect(await serving('web')).toBe('1.0.0');
  }, 90_000);

  it('a gate that neither passes nor fails before its timeout rolls back, saying so', async () => {
    expect(await serving('web')).toBe('1.0.0');
    const result = await finished(await deploy({ target: 'web', version: '1.0.1-flaky' }));
    expect(result.status, result.reason).toBe('rolled_back');
    expect(result.reason).toBe('health gate did not pass within 8 s');
    const gate = result.samples.filter((s) => s.phase === 'gate');
    // Good and bad alternate: neither threshold (2 in a row) is ever reached.
    expect(gate.length).toBeGreaterThanOrEqual(4);
    expect(gate.some((s) => s.ok) && gate.some((s) => !s.ok)).toBe(true);
    expect(await serving('web')).toBe('1.0.0');
  }, 60_000);

  it('a failure inside the watch window still rolls back', async () => {
    await finished(await deploy({ target: 'crashy', version: '2.0.0' }));
    const result = await finished(await deploy({ target: 'crashy', version: '2.1.0-latefail' }));
    expect(result.status, result.reason).toBe('rolled_back');
    expect(result.reason).toMatch(/in the watch window/);
    expect(result.samples.some((s) => s.phase === 'watch' && s.ok)).toBe(true);
    expect(await serving('crashy')).toBe('2.0.0');
  }, 60_000);

  it('a rollback that fails too ends failed with a critical email', async () => {
    expect((await finished(await deploy({ target: 'fragile', version: '1.0.0' }))).status).toBe('succeeded');
    const result = await finished(await deploy({ target: 'fragile', version: '1.1.0-dies' }));
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/rollback command failed/);
    await waitFor(
      () => smtp.messages.find((m) => m.subject === '[opsflow] [CRITICAL] deploy fragile 1.1.0-dies: failed'),
      Boolean,
      5000,
    );
  }, 60_000);

  it('production waits for approval: approved runs, rejected and timed out do not', async () => {
    const id = await deploy({ target: 'prod', version: '3.0.0' });
    await waitFor(
      () => live(id),
      (d) => d.live?.status === 'awaiting_approval',
      10_000,
    );
    expect(await serving('prod')).toBeNull();
    const asked = await h.pool.query<{ type: string }>(
      'SELECT type FROM opsflow.webhook_events WHERE idempotency_key = $1',
      [internalKey(`deploy:${id}:approval_requested`)],
    );
    expect(asked.rows).toEqual([{ type: 'deploy.approval_requested' }]);
    const alice = await makeKey('alice', ['approver']);
    const bob = await makeKey('bob', ['approver']);
    const deployer = await makeKey('ci', ['deployer']);
    const approve = (deployId: string, body: unknown, key: string) =>
      api(`/v1/deploys/${encodeURIComponent(deployId)}/approve`, body, 'POST', key);
    // The approver is the key, never a name the caller types.
    expect((await approve(id, { by: 'alice' }, alice.key)).status).toBe(400);
    // Four-eyes: the key that asked cannot approve; a key without deploys:approve cannot either.
    const self = await approve(id, {}, TEST_API_KEY);
    expect(self.status).toBe(403);
    expect(((await self.json()) as { error: { message: string } }).error.message).toMatch(/four-eyes/);
    expect((await approve(id, {}, deployer.key)).status).toBe(403);
    expect((await live(id)).live?.status).toBe('awaiting_approval');
    const ok = await approve(id, { comment: 'go' }, alice.key);
    expect(ok.status).toBe(200);
    // A second decision is refused.
    expect(
      (await api(`/v1/deploys/${encodeURIComponent(id)}/reject`, { reason: 'late' }, 'POST', bob.key)).status,
    ).toBe(409);
    const approved = await finished(id);
    expect(approved).toMatchObject({
      status: 'succeeded',
      decision: { approved: true, by: 'alice', byKeyId: alice.id, comment: 'go' },
    });
    expect(await serving('prod')).toBe('3.0.0');
    // A run of today's shape: the target by name, settings from the worker's plan, an approval by key.
    const { rows: approvedRows } = await h.pool.query<{ run_id: string }>(
      'SELECT run_id FROM opsflow.deploys WHERE id = $1',
      [id],
    );
    await saveHistory(deployWorkflowId('prod'), 'deploys/approved-by-another-key.json', approvedRows[0]!.run_id);

    const rid = await deploy({ target: 'prod', version: '3.1.0' });
    await waitFor(
      () => live(rid),
      (d) => d.live?.status === 'awaiting_approval',
      10_000,
    );
    // The workflow enforces four-eyes itself: an update sent past the API with the requester's key id is refused.
    const { rows: ridRows } = await h.pool.query<{ run_id: string }>(
      'SELECT run_id FROM opsflow.deploys WHERE id = $1',
      [rid],
    );
    const bypass = await h.client.workflow
      .getHandle(deployWorkflowId('prod'), ridRows[0]!.run_id)
      .executeUpdate(approveUpdate, { args: [{ by: 'anyone', byKeyId: envKeyId(TEST_API_KEY) }] })
      .then(
        () => undefined,
        (err: Error) => err,
      );
    expect(bypass).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((bypass as WorkflowUpdateFailedError).cause?.message).toMatch(/four-eyes/);
    const reject = (body: unknown) => api(`/v1/deploys/${encodeURIComponent(rid)}/reject`, body, 'POST', bob.key);
    expect((await reject({})).status).toBe(400);
    expect((await reject({ reason: 'freeze' })).status).toBe(200);
    expect(await finished(rid)).toMatchObject({ status: 'rejected', reason: 'rejected by bob: freeze' });
    expect(await serving('prod')).toBe('3.0.0');

    const timedOut = await finished(await deploy({ target: 'prod-quick', version: '1.0.0' }));
    expect(timedOut).toMatchObject({ status: 'canceled', reason: 'no approval within 2 s' });
    expect(await serving('prod-quick')).toBeNull();
    const { rows } = await h.pool.query<{ status: string; decision: unknown }>(
      'SELECT status, decision FROM opsflow.deploys WHERE id = $1',
      [id],
    );
    expect(rows[0]).toMatchObject({
      status: 'succeeded',
      decision: { by: 'alice', byKeyId: alice.id, approved: true },
    });
    const listed = (await (await api(`/v1/deploys/${encodeURIComponent(id)}`)).json()) as { requestedBy: unknown };
    expect(listed.requestedBy).toEqual({ keyId: envKeyId(TEST_API_KEY), keyName: 'env-1' });

    // A target that allows it lets the requester approve.
    const soloId = await deploy({ target: 'solo', version: '1.0.0' });
    await waitFor(
      () => live(soloId),
      (d) => d.live?.status === 'awaiting_approval',
      10_000,
    );
    expect((await approve(soloId, {}, TEST_API_KEY)).status).toBe(200);
    expect((await finished(soloId)).status).toBe('succeeded');
  }, 60_000);

  it('one deploy per target: a second gets 409 with the running id; cancel kills the command and restores', async () => {
    expect((await finished(await deploy({ target: 'locked', version: '1.0.0' }))).status).toBe('succeeded');
    const slow = await deploy({ target: 'locked', version: '1.1.0-slowcmd' });
    await waitFor(
      () => live(slow),
      (d) => d.live?.step === 'deploy',
      10_000,
    );
    const second = await api('/v1/deploys', { target: 'locked', version: '1.2.0' });
    expect(second.status).toBe(409);
    expect(
      ((await second.json()) as { error: { details: { runningDeployId: string } } }).error.details.runningDeployId,
    ).toBe(slow);
    expect((await api(`/v1/deploys/${encodeURIComponent(slow)}/cancel`, {})).status).toBe(202);
    const result = await finished(slow);
    expect(result.status).toBe('canceled');
    expect(result.deploy).toBeUndefined();
    expect(result.rollback?.exitCode).toBe(0);
    expect(await serving('locked')).toBe('1.0.0');
    expect((await api(`/v1/deploys/${encodeURIComponent(slow)}/cancel`, {})).status).toBe(409);
  }, 60_000);

  it('the next deploy may start as soon as the previous one reads finished (its report still being sent)', async () => {
    // A slow mail relay: the run records "succeeded" and then spends seconds in its report, holding the lock.
    const slow = await startSmtpCapture({ delayMs: 4000 });
    const h2 = await createHarness({
      DEPLOY_TARGETS_FILE: path.join(dir, 'targets.json'),
      SMTP_URL: slow.url,
      OPS_EMAIL: 'ops@example.com',
    });
    const w2 = await startWorkers(h2, ['deploys', 'webhooks']);
    const api2 = (p: string, body?: unknown) =>
      testApp(h2).request(p, {
        method: body === undefined ? 'GET' : 'POST',
        headers: auth,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    try {
      const first = (await (await api2('/v1/deploys', { target: 'reported', version: '1.0.0' })).json()) as {
        id: string;
      };
      await waitFor(
        async () => (await (await api2(`/v1/deploys/${encodeURIComponent(first.id)}`)).json()) as { status: string },
        (d) => d.status === 'succeeded',
        60_000,
      );
      // What a client does with that outcome: deploy the next version at once. The lock is still held (the
      // report waits on the relay), and the API waits for it instead of answering 409.
      expect((await h2.client.workflow.getHandle(deployWorkflowId('reported')).describe()).status.name).toBe('RUNNING');
      const second = await api2('/v1/deploys', { target: 'reported', version: '1.0.1' });
      expect(second.status, await second.clone().text()).toBe(202);
      const { id } = (await second.json()) as { id: string };
      await waitFor(
        async () => (await (await api2(`/v1/deploys/${encodeURIComponent(id)}`)).json()) as { status: string },
        (d) => d.status === 'succeeded',
        60_000,
      );
      expect(await serving('reported')).toBe('1.0.1');
    } finally {
      await w2.stop();
      await h2.close();
      await slow.close();
    }
  }, 120_000);

  it('a failing pre-deploy backup aborts before the deploy command runs', async () => {
    const id = await deploy({ target: 'guarded', version: '1.0.0' });
    const result = await finished(id);
    expect(result.status).toBe('aborted');
    expect(result.reason).toMatch(/pre-deploy backup .* failed: pg_dump not usable/);
    expect(result.deploy).toBeUndefined();
    expect(await serving('guarded')).toBeNull();
    // The pre-deploy backup ran as a child workflow, with its own summary in the UI.
    expect(result.backupId).toMatch(/^backup:/);
    expect((await uiView(h.client, result.backupId!)).summary).toBe(
      `pre-deploy backup of ${ownDb()} before guarded 1.0.0`,
    );
    const { rows } = await h.pool.query<{ run_id: string }>('SELECT run_id FROM opsflow.deploys WHERE id = $1', [id]);
    await saveHistory(deployWorkflowId('guarded'), 'deploys/backup-aborted.json', rows[0]!.run_id);
    // skipBackup deploys without it.
    expect((await finished(await deploy({ target: 'guarded', version: '1.0.0', skipBackup: true }))).status).toBe(
      'succeeded',
    );
  }, 60_000);

  it('a verified pre-deploy backup comes first, then the deploy runs and names the backup', async () => {
    // Workers with working PostgreSQL tools (this file's others have none, for the failure above).
    const h2 = await createHarness({
      DEPLOY_TARGETS_FILE: path.join(dir, 'targets.json'),
      BACKUP_DATABASE_URLS: inject('databaseUrl'),
    });
    const w2 = await startWorkers(h2, ['deploys', 'backups']);
    try {
      const res = await testApp(h2).request('/v1/deploys', {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ target: 'guarded', version: '1.1.0' }),
      });
      expect(res.status, await res.clone().text()).toBe(202);
      const { id } = (await res.json()) as { id: string };
      const { rows } = await h2.pool.query<{ workflow_id: string; run_id: string }>(
        'SELECT workflow_id, run_id FROM opsflow.deploys WHERE id = $1',
        [id],
      );
      const result = (await h2.client.workflow
        .getHandle(rows[0]!.workflow_id, rows[0]!.run_id)
        .result()) as DeployResult;
      expect(result.status, result.reason).toBe('succeeded');
      expect(result.backupId).toMatch(new RegExp(`^backup:${ownDb()}:`));
      const backup = await h2.pool.query<{ status: string }>('SELECT status FROM opsflow.backups WHERE id = $1', [
        result.backupId,
      ]);
      expect(backup.rows).toEqual([{ status: 'verified' }]);
      const steps = result.timeline.map((e) => e.step);
      expect(steps.indexOf('backup')).toBeGreaterThan(-1);
      expect(steps.indexOf('backup')).toBeLessThan(steps.indexOf('deploy'));
      expect(await serving('guarded')).toBe('1.1.0');
    } finally {
      await w2.stop();
      await h2.close();
    }
  }, 120_000);

  it('manual rollback goes back to the version before, health-gated, without approval', async () => {
    expect((await finished(await deploy({ target: 'web', version: '1.2.0' }))).status).toBe('succeeded');
    expect((await api('/v1/deploy-targets/web/rollback', {})).status).toBe(400);
    const res = await api('/v1/deploy-targets/web/rollback', { reason: 'customer reports' });
    expect(res.status).toBe(202);
    const result = await finished(((await res.json()) as { id: string }).id);
    expect(result).toMatchObject({
      status: 'succeeded',
      plan: { kind: 'rollback', version: '1.0.0', command: 'rollback' },
    });
    expect(await serving('web')).toBe('1.0.0');
    // A rollback cannot ship new code: only a version that once succeeded on the target.
    const never = await api('/v1/deploy-targets/web/rollback', { toVersion: '0.9.0', reason: 'older' });
    expect(never.status).toBe(422);
    expect(((await never.json()) as { error: { message: string } }).error.message).toMatch(/never succeeded on web/);
    const to = await api('/v1/deploy-targets/web/rollback', { toVersion: '1.2.0', reason: 'forward again' });
    expect(to.status).toBe(202);
    expect((await finished(((await to.json()) as { id: string }).id)).status).toBe('succeeded');
    expect(await serving('web')).toBe('1.2.0');
    const list = (await (await api('/v1/deploys?target=web&status=rolled_back')).json()) as { items: unknown[] };
    expect(list.items.length).toBe(4); // bad500, wrongver, failcmd, flaky
    // Paged one at a time: the same deploys, none repeated, newest first.
    const seen: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const pageRes = (await (
        await api(`/v1/deploys?target=web&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
      ).json()) as { items: { id: string }[]; nextCursor: string | null };
      seen.push(...pageRes.items.map((i) => i.id));
      cursor = pageRes.nextCursor;
    }
    const all = (await (await api('/v1/deploys?target=web&limit=200')).json()) as { items: { id: string }[] };
    expect(seen).toEqual(all.items.map((i) => i.id));
    expect(new Set(seen).size).toBe(seen.length);
    expect((await api('/v1/deploys?cursor=garbage')).status).toBe(400);
  }, 60_000);

  it('a worker killed during the health gate: another worker finishes the deploy correctly', async () => {
    const child = spawnEntry(
      'worker/main.ts',
      harnessEnv(h, {
        DEPLOY_TARGETS_FILE: path.join(dir, 'targets.json'),
        BACKUP_DATABASE_URLS: inject('databaseUrl'),
      }),
    );
    await workers.stop();
    try {
      const id = await deploy({ target: 'web', version: '1.3.0-bad500' });
      await waitFor(
        () => live(id),
        (d) => d.live?.step === 'health-gate',
        60_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${child.output()}`);
      });
      await child.kill('SIGKILL');
      workers = await startWorkers(h, ['deploys', 'backups', 'webhooks']);
      const result = await finished(id);
      expect(result.status, result.reason).toBe('rolled_back');
      expect(await serving('web')).toBe('1.2.0');
      expect(result.deploy?.exitCode).toBe(0);
      const { rows } = await h.pool.query<{ status: string }>('SELECT status FROM opsflow.deploys WHERE id = $1', [id]);
      expect(rows).toEqual([{ status: 'rolled_back' }]);
    } finally {
      await child.kill('SIGKILL');
    }
  }, 120_000);
});
