/**
 * Freeze windows: recurring spans of a target's local time in which deploys are refused (422 naming the window and
 * its end) unless the request overrides the freeze with a reason — the deploy then waits for another key's approval
 * (four-eyes, even where the target asks no approval and allows self-approval), which sees the reason. Rollbacks are
 * never frozen. The window arithmetic (weekly and daily windows, time zones, daylight-saving changes, back-to-back
 * windows) is checked against known instants; the rest end to end against a real service process, real Temporal
 * and real PostgreSQL.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activeFreeze, type FreezeWindow } from '../../lib/deploys/freeze.js';
import { DeployTargetsError, parseDeployTargets } from '../../lib/deploys/targets.js';
import { freePort } from '../global-setup.js';
import { apiCaller } from '../helpers/api.js';
import { serviceTarget, stopServices } from '../helpers/deploy-service.js';
import { saveHistory } from '../helpers/histories.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';

const at = (iso: string) => new Date(iso);
const freeze = (windows: FreezeWindow[], timeZone: string, when: string) =>
  activeFreeze({ freezeWindows: windows, timeZone }, at(when));

describe('freeze windows (pure)', () => {
  const weekend = [{ name: 'weekend', start: 'Fri 16:00', end: 'Mon 08:00' }];

  it('a weekly window in its zone, across daylight-saving time', () => {
    // Winter (CET, UTC+1): Friday 16:00 in Berlin is 15:00 UTC.
    expect(freeze(weekend, 'Europe/Berlin', '2026-12-04T14:59:00Z')).toBeUndefined();
    expect(freeze(weekend, 'Europe/Berlin', '2026-12-04T15:00:00Z')).toEqual({
      window: 'weekend',
      describe: '"weekend" (Fri 16:00 – Mon 08:00 Europe/Berlin)',
      until: at('2026-12-07T07:00:00Z'),
    });
    expect(freeze(weekend, 'Europe/Berlin', '2026-12-06T23:30:00Z')?.until).toEqual(at('2026-12-07T07:00:00Z'));
    expect(freeze(weekend, 'Europe/Berlin', '2026-12-07T07:00:00Z')).toBeUndefined();
    expect(freeze(weekend, 'Europe/Berlin', '2026-12-09T12:00:00Z')).toBeUndefined();
    // Summer (CEST, UTC+2): 14:00 UTC.
    expect(freeze(weekend, 'Europe/Berlin', '2026-07-03T13:59:00Z')).toBeUndefined();
    expect(freeze(weekend, 'Europe/Berlin', '2026-07-03T14:00:00Z')?.until).toEqual(at('2026-07-06T06:00:00Z'));
    // The weekend the clocks go back (25 October 2026): frozen at 16:00 CEST, thawed at 08:00 CET.
    expect(freeze(weekend, 'Europe/Berlin', '2026-10-23T14:30:00Z')?.until).toEqual(at('2026-10-26T07:00:00Z'));
    // The weekend they go forward (29 March 2026): frozen at 16:00 CET, thawed at 08:00 CEST.
    expect(freeze(weekend, 'Europe/Berlin', '2026-03-27T15:00:00Z')?.until).toEqual(at('2026-03-30T06:00:00Z'));
    // UTC by default.
    expect(activeFreeze({ freezeWindows: weekend }, at('2026-12-04T16:00:00Z'))?.until).toEqual(
      at('2026-12-07T08:00:00Z'),
    );
  });

  it('a daily window across midnight; windows back to back are one freeze; none, no freeze', () => {
    const nights = [{ start: '22:00', end: '06:00' }];
    // 23:00 in New York (EST, UTC-5) → until 06:00 there, 11:00 UTC.
    expect(freeze(nights, 'America/New_York', '2026-12-05T04:00:00Z')).toEqual({
      window: '22:00 – 06:00 America/New_York',
      describe: '22:00 – 06:00 America/New_York',
      until: at('2026-12-05T11:00:00Z'),
    });
    expect(freeze(nights, 'America/New_York', '2026-12-05T10:59:00Z')?.until).toEqual(at('2026-12-05T11:00:00Z'));
    expect(freeze(nights, 'America/New_York', '2026-12-05T11:00:00Z')).toBeUndefined();
    expect(freeze(nights, 'America/New_York', '2026-12-05T18:00:00Z')).toBeUndefined();
    const chained = [
      { name: 'saturday', start: 'Sat 00:00', end: 'Sun 00:00' },
      { name: 'sunday', start: 'Sun 00:00', end: 'Mon 00:00' },
      { name: 'release night', start: '23:00', end: '01:00' },
    ];
    // Saturday noon: Saturday's window, then Sunday's, then the night's last hour — deploys go Monday 01:00.
    expect(freeze(chained, 'UTC', '2026-12-05T12:00:00Z')).toMatchObject({
      window: 'saturday',
      until: at('2026-12-07T01:00:00Z'),
    });
    expect(freeze([], 'UTC', '2026-12-05T12:00:00Z')).toBeUndefined();
    expect(activeFreeze({}, at('2026-12-05T12:00:00Z'))).toBeUndefined();
    // An end that does not exist on the day (02:30 on 29 March in Berlin, inside the jump from 02:00 to 03:00)
    // still ends the window, after the gap and after the moment asked about.
    const early = [{ start: '01:00', end: '02:30' }];
    const gap = freeze(early, 'Europe/Berlin', '2026-03-29T00:30:00Z');
    expect(gap?.until.getTime()).toBeGreaterThan(at('2026-03-29T00:30:00Z').getTime());
    expect(gap?.until.getTime()).toBeLessThanOrEqual(at('2026-03-29T01:30:00Z').getTime());
  });

  it('the targets file refuses malformed windows and zones, naming the target and field', () => {
    const base = { environment: 'staging', commands: { deploy: 'true' }, health: { url: 'http://127.0.0.1:1/' } };
    const problem = (extra: Record<string, unknown>) => {
      try {
        parseDeployTargets([{ name: 'web', ...base, ...extra }], []);
      } catch (err) {
        expect(err).toBeInstanceOf(DeployTargetsError);
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(problem({ freezeWindows: [{ start: 'Fri 16:00', end: 'Mon 08:00' }], timeZone: 'Europe/Berlin' })).toBe(
      'accepted',
    );
    expect(problem({ freezeWindows: [{ start: 'Friday 16:00', end: 'Mon 08:00' }] })).toMatch(
      /web\.freezeWindows\.0\.start: "Fri 16:00"/,
    );
    expect(problem({ freezeWindows: [{ start: 'Fri 24:00', end: 'Mon 08:00' }] })).toMatch(/freezeWindows\.0\.start/);
    expect(problem({ freezeWindows: [{ start: 'Fri 16:00', end: '08:00' }] })).toMatch(
      /web\.freezeWindows\.0\.end: start and end both name a day/,
    );
    expect(problem({ freezeWindows: [{ start: '08:00', end: '08:00' }] })).toMatch(/must not end where it starts/);
    expect(problem({ freezeWindows: [{ start: '08:00', end: '09:00', every: 'day' }] })).toMatch(/every/);
    expect(problem({ timeZone: 'Mars/Olympus_Mons' })).toMatch(/web\.timeZone: not an IANA time zone/);
  });
});

// Own target names: workflow ids are per target, and the Temporal server is shared with other files.
const FROZEN = `frozen-${process.pid}`;
const OPEN = `thawed-${process.pid}`;

describe('freeze windows (API, real deploys)', () => {
  let h: Harness;
  let workers: TestWorkers;
  let dir: string;
  let alice: ReturnType<typeof apiCaller>;
  let bob: ReturnType<typeof apiCaller>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-freeze-'));
    // A daily window around now (UTC): two hours either side, so the test cannot run off its end.
    const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
    const window = {
      name: 'change freeze',
      start: hhmm(Date.now() - 2 * 3600_000),
      end: hhmm(Date.now() + 2 * 3600_000),
    };
    const file = path.join(dir, 'targets.json');
    await writeFile(
      file,
      JSON.stringify({
        targets: [
          // A staging target that asks no approval and lets a requester approve its own deploys: the override
          // needs another key's decision all the same.
          serviceTarget(dir, FROZEN, await freePort(), {
            allowSelfApproval: true,
            watchWindowSec: 0,
            freezeWindows: [window],
          }),
          serviceTarget(dir, OPEN, await freePort(), {
            watchWindowSec: 0,
            // Windows that hold no moment of today.
            freezeWindows: [{ start: hhmm(Date.now() + 5 * 3600_000), end: hhmm(Date.now() + 6 * 3600_000) }],
          }),
        ],
      }),
    );
    h = await createHarness({ DEPLOY_TARGETS_FILE: file });
    workers = await startWorkers(h, ['deploys']);
    const admin = apiCaller(() => testApp(h));
    const scopes = ['deploys:run', 'deploys:approve', 'read'];
    const a = await admin<{ key: string }>('POST', '/v1/api-keys', { name: 'alice', scopes });
    const b = await admin<{ key: string }>('POST', '/v1/api-keys', { name: 'bob', scopes });
    alice = apiCaller(() => testApp(h), a.body.key);
    bob = apiCaller(() => testApp(h), b.body.key);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await stopServices(dir, [FROZEN, OPEN]);
    await rm(dir, { recursive: true, force: true });
  });

  const deployOf = (id: string) =>
    waitFor(
      async () =>
        (
          await h.pool.query<{ status: string; freeze_override: unknown; decision: unknown }>(
            'SELECT status, freeze_override, decision FROM opsflow.deploys WHERE id = $1',
            [id],
          )
        ).rows[0],
      (r) => r !== undefined,
      10_000,
    );
  const settled = (id: string, statuses: string[]) =>
    waitFor(
      () => deployOf(id),
      (r) => r !== undefined && statuses.includes(r.status),
      60_000,
    );

  it('refuses a deploy (and its dry run) in a freeze, naming the window and its end; the targets say so', async () => {
    const targets = await alice<{ items: { name: string; frozen: { window: string; until: string } | null }[] }>(
      'GET',
      '/v1/deploy-targets',
    );
    const frozen = targets.body.items.find((t) => t.name === FROZEN)!.frozen!;
    expect(frozen.window).toBe('change freeze');
    const until = Date.parse(frozen.until);
    expect(until).toBeGreaterThan(Date.now() + 3600_000);
    expect(targets.body.items.find((t) => t.name === OPEN)!.frozen).toBeNull();

    for (const dryRun of [false, true]) {
      const refused = await alice<{ error: { code: string; message: string; details: { path: string }[] } }>(
        'POST',
        '/v1/deploys',
        { target: FROZEN, version: '1.0.0', dryRun },
      );
      expect(refused.status).toBe(422);
      expect(refused.body.error.code).toBe('unprocessable');
      expect(refused.body.error.message).toContain('"change freeze"');
      expect(refused.body.error.message).toContain(frozen.until);
      expect(refused.body.error.details).toEqual([expect.objectContaining({ path: 'overrideFreeze' })]);
    }
    const none = await h.pool.query('SELECT 1 FROM opsflow.deploys WHERE target = $1', [FROZEN]);
    expect(none.rowCount).toBe(0);
    // An override needs a reason.
    for (const overrideFreeze of [{}, { reason: '  ' }, { reason: 'x', extra: 1 }, 'hotfix']) {
      const bad = await alice('POST', '/v1/deploys', { target: FROZEN, version: '1.0.0', overrideFreeze });
      expect(bad.status, JSON.stringify(overrideFreeze)).toBe(400);
    }
  });

  it('an override waits for another key’s approval, which sees the reason; then the deploy runs', async () => {
    const started = await alice<{ id: string }>('POST', '/v1/deploys', {
      target: FROZEN,
      version: '1.0.0',
      overrideFreeze: { reason: 'hotfix for the checkout outage' },
    });
    expect(started.status).toBe(202);
    const id = started.body.id;
    await settled(id, ['awaiting_approval']);
    const view = await alice<{
      freezeOverride: { window: string; until: string; reason: string } | null;
      live: { plan: { requiresApproval: boolean; steps: string[] } } | null;
    }>('GET', `/v1/deploys/${encodeURIComponent(id)}`);
    expect(view.body.freezeOverride).toMatchObject({
      window: 'change freeze',
      reason: 'hotfix for the checkout outage',
    });
    expect(view.body.live?.plan.requiresApproval).toBe(true);
    expect(view.body.live?.plan.steps[0]).toContain('overrides freeze window change freeze');

    // Four-eyes, though the target allows self-approval.
    const self = await alice<{ error: { code: string; message: string } }>(
      'POST',
      `/v1/deploys/${encodeURIComponent(id)}/approve`,
      {},
    );
    expect(self.status).toBe(403);
    expect(self.body.error.message).toContain('four-eyes');
    expect((await deployOf(id))!.status).toBe('awaiting_approval');

    const approved = await bob('POST', `/v1/deploys/${encodeURIComponent(id)}/approve`, { comment: 'go' });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    const done = await settled(id, ['succeeded', 'failed', 'rolled_back']);
    expect(done!.status).toBe('succeeded');
    expect(done!.decision).toMatchObject({ by: 'bob', approved: true });
    const { rows } = await h.pool.query<{ workflow_id: string; run_id: string }>(
      'SELECT workflow_id, run_id FROM opsflow.deploys WHERE id = $1',
      [id],
    );
    await saveHistory(rows[0]!.workflow_id, 'deploys/freeze-override.json', rows[0]!.run_id);
  });

  it('rollbacks are never frozen; an override outside a freeze changes nothing', async () => {
    // A second version, overridden and approved, so that there is something to roll back from.
    const second = await alice<{ id: string }>('POST', '/v1/deploys', {
      target: FROZEN,
      version: '1.0.1',
      overrideFreeze: { reason: 'second hotfix' },
    });
    await settled(second.body.id, ['awaiting_approval']);
    await bob('POST', `/v1/deploys/${encodeURIComponent(second.body.id)}/approve`, {});
    expect((await settled(second.body.id, ['succeeded', 'failed', 'rolled_back']))!.status).toBe('succeeded');

    const back = await alice<{ id: string }>('POST', `/v1/deploy-targets/${FROZEN}/rollback`, {
      toVersion: '1.0.0',
      reason: 'the hotfix made it worse',
    });
    expect(back.status, JSON.stringify(back.body)).toBe(202);
    const rolled = await settled(back.body.id, ['succeeded', 'failed', 'rolled_back', 'awaiting_approval']);
    expect(rolled!.status).toBe('succeeded');
    expect(rolled!.freeze_override).toBeNull();

    const open = await alice<{ id: string }>('POST', '/v1/deploys', {
      target: OPEN,
      version: '2.0.0',
      overrideFreeze: { reason: 'not needed' },
    });
    expect(open.status).toBe(202);
    const ran = await settled(open.body.id, ['succeeded', 'failed', 'rolled_back', 'awaiting_approval']);
    expect(ran!.status).toBe('succeeded');
    expect(ran!.freeze_override).toBeNull();
  });
});
