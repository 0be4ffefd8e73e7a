/**
 * Trust: deploying a guarded (approval-requiring) target without its pre-deploy backup is an approver's call, not
 * a deployer's — `skipBackup` there needs deploys:approve too — and whoever approves sees it (the deploy's
 * `skipBackup`, and a warning on the console's approval row). Real API (app.request), real PostgreSQL, real
 * Temporal; no worker (the refusal is before anything starts; the row is written as the run starts).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiCaller, consoleHtml } from '../helpers/api.js';
import { serviceTarget } from '../helpers/deploy-service.js';
import { createHarness, testApp, type Harness } from '../helpers/harness.js';

// Own target names: workflow ids are per target, and the Temporal server is shared with other files.
const PROD = `skip-prod-${process.pid}`;
const STAGING = `skip-staging-${process.pid}`;

describe('security: skipping the pre-deploy backup', () => {
  let h: Harness;
  let deployer: ReturnType<typeof apiCaller>;
  let lead: ReturnType<typeof apiCaller>;

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-skip-'));
    const file = path.join(dir, 'targets.json');
    await writeFile(
      file,
      JSON.stringify({
        targets: [serviceTarget(dir, PROD, 1, { environment: 'production' }), serviceTarget(dir, STAGING, 2)],
      }),
    );
    h = await createHarness({ DEPLOY_TARGETS_FILE: file });
    const admin = apiCaller(() => testApp(h));
    const d = await admin<{ key: string }>('POST', '/v1/api-keys', { name: 'deployer', scopes: ['deployer'] });
    const l = await admin<{ key: string }>('POST', '/v1/api-keys', {
      name: 'lead',
      scopes: ['deploys:run', 'deploys:approve', 'read'],
    });
    deployer = apiCaller(() => testApp(h), d.body.key);
    lead = apiCaller(() => testApp(h), l.body.key);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a deployer cannot skip the backup of a production target; one holding deploys:approve can, and it is on the record', async () => {
    const refused = await deployer<{ error: { code: string; message: string } }>('POST', '/v1/deploys', {
      target: PROD,
      version: '1.0.0',
      skipBackup: true,
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toContain('deploys:approve');
    const none = await h.pool.query(`SELECT 1 FROM opsflow.deploys WHERE target = $1`, [PROD]);
    expect(none.rowCount).toBe(0);

    // Where no approval is needed, skipping stays the deployer's choice.
    expect(
      (await deployer('POST', '/v1/deploys', { target: STAGING, version: '1.0.0', skipBackup: true })).status,
    ).toBe(202);

    const started = await lead<{ id: string }>('POST', '/v1/deploys', {
      target: PROD,
      version: '1.0.0',
      skipBackup: true,
    });
    expect(started.status).toBe(202);
    // (The list: one deploy's own view also asks its running workflow, which no worker runs here.)
    const listed = await lead<{ items: { id: string; skipBackup: boolean }[] }>('GET', `/v1/deploys?target=${PROD}`);
    expect(listed.body.items).toEqual([expect.objectContaining({ id: started.body.id, skipBackup: true })]);
    // The approval row shows it once the run waits for approval (here set by hand: no worker runs it).
    await h.pool.query(`UPDATE opsflow.deploys SET status = 'awaiting_approval' WHERE id = $1`, [started.body.id]);
    const page = await consoleHtml(testApp(h), '/console/deploys');
    const row = page.slice(page.indexOf(`data-pending="${started.body.id}"`));
    expect(row.slice(0, row.indexOf('</tr>'))).toContain('no pre-deploy backup');
  });
});
