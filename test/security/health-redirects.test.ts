/**
 * Trust: a deploy's health sample does not follow redirects — a health URL answering 302 to another host fails
 * the sample instead of letting that host's answer pass the gate. (The system check already did not follow.)
 * Real HTTP receivers; the real deploy activity on a harness whose targets file declares the target.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployActivities } from '../../activities/deploys/index.js';
import { serviceTarget } from '../helpers/deploy-service.js';
import { createHarness, workerDeps, type Harness } from '../helpers/harness.js';
import { respond, startReceiver, type Receiver } from '../helpers/http.js';

describe('security: deploy health samples', () => {
  let h: Harness;
  let dir: string;
  let elsewhere: Receiver;
  let redirector: Receiver;
  let direct: Receiver;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-sec-health-'));
    elsewhere = await startReceiver(respond(200, JSON.stringify({ version: 'v2' })));
    redirector = await startReceiver(respond(302, '', { location: `${elsewhere.url}/health` }));
    direct = await startReceiver(respond(200, JSON.stringify({ version: 'v2' })));
    const target = (name: string, url: string) => {
      const t = serviceTarget(dir, name, 1);
      return { ...t, health: { ...t.health, url } };
    };
    const file = path.join(dir, 'targets.json');
    await writeFile(
      file,
      JSON.stringify({
        targets: [target('redirected', `${redirector.url}/health`), target('direct', `${direct.url}/health`)],
      }),
    );
    h = await createHarness({ DEPLOY_TARGETS_FILE: file });
  });
  afterAll(async () => {
    await h?.close();
    for (const r of [elsewhere, redirector, direct]) await r?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a 302 is the sample’s answer: it fails, and the host it names is never asked', async () => {
    const sample = await createDeployActivities(workerDeps(h)).healthSample({
      target: 'redirected',
      phase: 'gate',
      version: 'v2',
    });
    expect(sample).toMatchObject({ ok: false, status: 302 });
    expect(redirector.requests).toHaveLength(1);
    expect(elsewhere.requests).toHaveLength(0);
  });

  it('a health URL that answers itself still passes', async () => {
    const sample = await createDeployActivities(workerDeps(h)).healthSample({
      target: 'direct',
      phase: 'gate',
      version: 'v2',
    });
    expect(sample).toMatchObject({ ok: true, status: 200, versionSeen: 'v2' });
  });
});
