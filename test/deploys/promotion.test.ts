/**
 * Promotion, staging → production: a target with promotesFrom takes only versions that succeeded on its source and
 * soaked there (soakSec after that deploy finished, no manual rollback away from them since); anything else, and
 * any bump, is a 422 naming why. POST /v1/deploy-targets/{name}/promote deploys what the source runs now; the
 * targets list, the CLI and the console show each pipeline. The targets file refuses a promotesFrom that names no
 * target or makes a loop. Real service processes, real Temporal, real PostgreSQL.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeployTargetsError, parseDeployTargets } from '../../lib/deploys/targets.js';
import { freePort } from '../global-setup.js';
import { apiCaller, consoleHtml } from '../helpers/api.js';
import { serviceTarget, stopServices } from '../helpers/deploy-service.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';

describe('promotion (targets file)', () => {
  const base = { environment: 'staging', commands: { deploy: 'true' }, health: { url: 'http://127.0.0.1:1/' } };
  const problem = (targets: Record<string, unknown>[]) => {
    try {
      parseDeployTargets(
        targets.map((t) => ({ ...base, ...t })),
        [],
      );
    } catch (err) {
      expect(err).toBeInstanceOf(DeployTargetsError);
      return (err as Error).message;
    }
    return 'accepted';
  };

  it('accepts a chain; refuses an unknown source, a loop and a bad soak', () => {
    expect(
      problem([
        { name: 'staging' },
        { name: 'canary', promotesFrom: 'staging', soakSec: 600 },
        { name: 'production', promotesFrom: 'canary' },
      ]),
    ).toBe('accepted');
    expect(problem([{ name: 'production', promotesFrom: 'stagin' }])).toMatch(
      /production\.promotesFrom: stagin is not a declared target/,
    );
    expect(
      problem([
        { name: 'a', promotesFrom: 'b' },
        { name: 'b', promotesFrom: 'a' },
      ]),
    ).toMatch(/a\.promotesFrom: b leads back to a \(a loop\)/);
    expect(problem([{ name: 'a', promotesFrom: 'a' }])).toMatch(/a\.promotesFrom: a leads back to a/);
    expect(problem([{ name: 'a' }, { name: 'b', promotesFrom: 'a', soakSec: -1 }])).toMatch(/b\.soakSec/);
  });
});

// Own target names: workflow ids are per target, and the Temporal server is shared with other files.
const STAGE = `promo-stage-${process.pid}`;
const PROD = `promo-prod-${process.pid}`;
const SOAK_SEC = 3;

interface Refusal {
  error: { code: string; message: string };
}
interface TargetItem {
  name: string;
  promotesFrom: string | null;
  soakSec: number;
  promotion: {
    from: string;
    candidate: { version: string; state: string; at: string | null } | null;
    current: string | null;
  } | null;
}

describe('promotion (API, real deploys)', () => {
  let h: Harness;
  let workers: TestWorkers;
  let dir: string;
  const api = apiCaller(() => testApp(h));

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-promote-'));
    const file = path.join(dir, 'targets.json');
    await writeFile(
      file,
      JSON.stringify({
        targets: [
          serviceTarget(dir, STAGE, await freePort(), { watchWindowSec: 0 }),
          serviceTarget(dir, PROD, await freePort(), {
            environment: 'production',
            requiresApproval: false,
            watchWindowSec: 0,
            promotesFrom: STAGE,
            soakSec: SOAK_SEC,
          }),
        ],
      }),
    );
    h = await createHarness({ DEPLOY_TARGETS_FILE: file });
    workers = await startWorkers(h, ['deploys']);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await stopServices(dir, [STAGE, PROD]);
    await rm(dir, { recursive: true, force: true });
  });

  const finished = (id: string) =>
    waitFor(
      async () =>
        (
          await h.pool.query<{ status: string; version: string; finished_at: Date | null }>(
            'SELECT status, version, finished_at FROM opsflow.deploys WHERE id = $1',
            [id],
          )
        ).rows[0],
      (r) => r?.finished_at != null,
      60_000,
    );
  const ship = async (target: string, version: string) => {
    const started = await api<{ id: string }>('POST', '/v1/deploys', { target, version });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const done = await finished(started.body.id);
    expect(done!.status).toBe('succeeded');
    return done!;
  };
  const pipeline = async () =>
    (await api<{ items: TargetItem[] }>('GET', '/v1/deploy-targets')).body.items.find((t) => t.name === PROD)!;
  const refusedDeploy = async (body: Record<string, unknown>) => {
    const r = await api<Refusal>('POST', '/v1/deploys', { target: PROD, ...body });
    expect(r.status, JSON.stringify(r.body)).toBe(422);
    expect(r.body.error.code).toBe('unprocessable');
    return r.body.error.message;
  };

  it('a version that never ran on the source, a bump, or nothing to promote: 422 naming why', async () => {
    expect(await refusedDeploy({ version: '1.0.0' })).toContain(`has not; deploy it to ${STAGE} first`);
    expect(await refusedDeploy({ bump: 'patch' })).toContain('not a bump');
    const promote = await api<Refusal>('POST', `/v1/deploy-targets/${PROD}/promote`);
    expect(promote.status).toBe(422);
    expect(promote.body.error.message).toContain(`nothing has been deployed to ${STAGE}`);
    const notPromoted = await api<Refusal>('POST', `/v1/deploy-targets/${STAGE}/promote`, {});
    expect(notPromoted.status).toBe(422);
    expect(notPromoted.body.error.message).toContain('promotesFrom is not set');
    const unknown = await api('POST', '/v1/deploy-targets/nowhere/promote', {});
    expect(unknown.status).toBe(404);
    const bad = await api('POST', `/v1/deploy-targets/${PROD}/promote`, { version: '1.0.0' });
    expect(bad.status).toBe(400);
    const none = await h.pool.query('SELECT 1 FROM opsflow.deploys WHERE target = $1', [PROD]);
    expect(none.rowCount).toBe(0);
    expect(await pipeline()).toMatchObject({
      promotesFrom: STAGE,
      soakSec: SOAK_SEC,
      promotion: { from: STAGE, candidate: null, current: null },
    });
  });

  it('after staging: soaking (422 until when), then promotable; promote deploys it', async () => {
    const staged = await ship(STAGE, '1.0.0');
    const soakEnds = staged.finished_at!.getTime() + SOAK_SEC * 1000;
    expect(await refusedDeploy({ version: '1.0.0' })).toContain(
      `soaks there until ${new Date(soakEnds).toISOString()}`,
    );
    expect((await pipeline()).promotion!.candidate).toEqual({
      version: '1.0.0',
      state: 'soaking',
      at: new Date(soakEnds).toISOString(),
    });
    await new Promise((done) => setTimeout(done, Math.max(0, soakEnds - Date.now()) + 100));

    const dry = await api<{ dryRun: boolean; plan: { version: string; target: string } }>(
      'POST',
      `/v1/deploy-targets/${PROD}/promote`,
      { dryRun: true },
    );
    expect(dry.status).toBe(200);
    expect(dry.body.plan).toMatchObject({ version: '1.0.0', target: PROD });
    const promoted = await api<{ id: string }>('POST', `/v1/deploy-targets/${PROD}/promote`);
    expect(promoted.status, JSON.stringify(promoted.body)).toBe(202);
    const done = await finished(promoted.body.id);
    expect(done).toMatchObject({ status: 'succeeded', version: '1.0.0' });
    expect((await pipeline()).promotion).toMatchObject({
      candidate: { version: '1.0.0', state: 'good' },
      current: '1.0.0',
    });

    // The console's Deploys page shows the pipeline, versions side by side.
    const page = await consoleHtml(testApp(h), '/console/deploys');
    const row = page.slice(page.indexOf(`data-pipeline="${PROD}"`));
    expect(row.slice(0, row.indexOf('</tr>'))).toMatch(new RegExp(`${STAGE}[\\s\\S]*1\\.0\\.0[\\s\\S]*good`));
  });

  it('a version rolled back on the source is refused, naming the rollback; the version before it is the candidate again', async () => {
    await ship(STAGE, '1.1.0');
    const back = await api<{ id: string }>('POST', `/v1/deploy-targets/${STAGE}/rollback`, {
      toVersion: '1.0.0',
      reason: '1.1.0 breaks checkout',
    });
    expect(back.status).toBe(202);
    expect((await finished(back.body.id))!.status).toBe('succeeded');
    const message = await refusedDeploy({ version: '1.1.0' });
    expect(message).toContain(`1.1.0 was rolled back on ${STAGE}`);
    expect(message).toContain(back.body.id);
    // Staging runs 1.0.0 again, still good: it is the candidate.
    expect((await pipeline()).promotion!.candidate).toMatchObject({ version: '1.0.0', state: 'good' });
  });
});
