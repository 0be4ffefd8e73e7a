/** The schedules API against the real Temporal server: list, pause with a note, unpause, trigger, backfill, 404. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declareSchedules } from '../../lib/schedules/declarations.js';
import { applySchedules } from '../../worker/schedules.js';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';

describe('schedules API', () => {
  let h: Harness;
  let workers: TestWorkers;
  const headers = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };
  const id = encodeURIComponent('opsflow:system-check');

  beforeAll(async () => {
    // A low cap, so the window just over it is a few minutes long.
    h = await createHarness({ SCHEDULE_BACKFILL_MAX_RUNS: '3' });
    await applySchedules(h.client, declareSchedules(h.config, h.queues));
    workers = await startWorkers(h, ['system']);
  });
  afterAll(async () => {
    await h.client.schedule
      .getHandle('opsflow:system-check')
      .unpause('test done')
      .catch(() => undefined);
    await workers.stop();
    await h.close();
  });
  const api = (path: string, body?: unknown) =>
    testApp(h).request(path, {
      method: body === undefined ? 'GET' : 'POST',
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it('lists every declared schedule with its spec in words, time zone, next 3 runs', async () => {
    const { items } = (await (await api('/v1/schedules')).json()) as {
      items: { id: string; spec: string; timezone: string; nextRuns: string[]; applied: boolean; overlap: string }[];
    };
    const ids = items.map((i) => i.id);
    for (const want of [
      'opsflow:system-check',
      'opsflow:webhook-dlq-redrive',
      'opsflow:webhook-dlq-cleanup',
      'opsflow:subscription-sweep',
      'opsflow:backup-restore-drill',
      'opsflow:backup-freshness',
      'opsflow:history-retention',
      'opsflow:scratch-janitor',
    ]) {
      expect(ids).toContain(want);
    }
    const byId = Object.fromEntries(items.map((i) => [i.id, i]));
    expect(byId['opsflow:system-check']).toMatchObject({
      spec: 'every 5 minutes',
      timezone: 'UTC',
      applied: true,
      overlap: 'SKIP',
    });
    expect(byId['opsflow:backup-restore-drill']?.spec).toBe('04:00 on the first sunday of the month');
    expect(byId['opsflow:subscription-sweep']?.spec).toBe('cron 0 9 * * *');
    expect(byId['opsflow:system-check']?.nextRuns).toHaveLength(3);
  });

  it('pauses with a note and unpauses; the note is required', async () => {
    expect((await api(`/v1/schedules/${id}/pause`, {})).status).toBe(400);
    const paused = (await (
      await api(`/v1/schedules/${id}/pause`, { note: 'SMTP maintenance until 14:00' })
    ).json()) as {
      paused: boolean;
      note: string;
    };
    expect(paused).toMatchObject({ paused: true, note: 'SMTP maintenance until 14:00' });
    expect((await h.client.schedule.getHandle('opsflow:system-check').describe()).state.paused).toBe(true);
    const resumed = (await (await api(`/v1/schedules/${id}/unpause`, {})).json()) as { paused: boolean };
    expect(resumed.paused).toBe(false);
  });

  it('trigger runs it now and the last run shows the outcome', async () => {
    const before = (await h.client.schedule.getHandle('opsflow:system-check').describe()).info.numActionsTaken;
    expect((await api(`/v1/schedules/${id}/trigger`, {})).status).toBe(202);
    await waitFor(
      async () => (await h.client.schedule.getHandle('opsflow:system-check').describe()).info.numActionsTaken,
      (n) => n > before,
      15_000,
    );
    const one = await waitFor(
      async () => (await (await api(`/v1/schedules/${id}`)).json()) as { lastRun: { outcome: string } | null },
      (v) => v.lastRun?.outcome === 'COMPLETED',
      20_000,
    );
    expect(one.lastRun?.outcome).toBe('COMPLETED');
  });

  it('backfills a past window one run at a time, counting its runs first; refuses a window over the cap, a reversed or future window and unknown ids', async () => {
    // A window a day back, before this test server existed: none of its times has run. (A window the schedule
    // already ran through would backfill runs whose workflow ids exist, which Temporal does not start again.)
    const fiveMinutes = 5 * 60_000;
    const end = new Date(Math.floor((Date.now() - 24 * 3600_000) / fiveMinutes) * fiveMinutes + 1000);
    const start = new Date(end.getTime() - 11 * 60_000);
    // The system check runs every 5 minutes on the clock: 14:55:01 back 11 minutes holds 14:45 and 14:50 and 14:55.
    const due = [0, 1, 2, 3].map((k) => end.getTime() - 1000 - k * fiveMinutes).filter((t) => t >= start.getTime());
    const handle = h.client.schedule.getHandle('opsflow:system-check');
    const before = (await handle.describe()).info.numActionsTaken;

    // Four runs is one over the cap of 3: refused whole, with the count, and nothing starts.
    const wide = { start: new Date(end.getTime() - 16 * 60_000 - 1000).toISOString(), end: end.toISOString() };
    const refused = await api(`/v1/schedules/${id}/backfill`, wide);
    expect(refused.status).toBe(422);
    const envelope = (await refused.json()) as { error: { message: string; details: unknown } };
    expect(envelope.error.message).toContain('SCHEDULE_BACKFILL_MAX_RUNS');
    expect(envelope.error.details).toEqual({ runs: 4, exact: true, maxRuns: 3 });
    // A month of a 5-minute schedule (8,640 runs) likewise: counted until past the cap (the server answers
    // 1,000 times a call), and said so.
    const month = { start: new Date(end.getTime() - 30 * 24 * 3600_000).toISOString(), end: end.toISOString() };
    const monthly = (await (await api(`/v1/schedules/${id}/backfill`, month)).json()) as {
      error: { message: string; details: unknown };
    };
    expect(monthly.error.details).toEqual({ runs: 1000, exact: false, maxRuns: 3 });
    expect(monthly.error.message).toContain('at least 1000 runs');
    // Under a cap of 2,000, a week (2,016 runs) is counted exactly across three pages, and still refused.
    const week = { start: new Date(end.getTime() - 7 * 24 * 3600_000).toISOString(), end: end.toISOString() };
    const wider = testApp(h, { config: { ...h.config, backfillMaxRuns: 2000 } });
    const weekly = await wider.request(`/v1/schedules/${id}/backfill`, {
      method: 'POST',
      headers,
      body: JSON.stringify(week),
    });
    expect(weekly.status).toBe(422);
    expect(((await weekly.json()) as { error: { details: unknown } }).error.details).toEqual({
      runs: 2016,
      exact: true,
      maxRuns: 2000,
    });
    const res = await api(`/v1/schedules/${id}/backfill`, { start: start.toISOString(), end: end.toISOString() });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ id: 'opsflow:system-check', runs: due.length });
    // Every counted run is accepted: started, or buffered behind the one running (BUFFER_ALL: one at a time, none
    // dropped). Other test files apply the same namespace-wide schedule with their own task queues, so the runs may
    // wait on a queue nobody polls: what is checked is that the server took all of them, never two running at once.
    const accepted = async () => {
      const d = await handle.describe();
      expect(d.info.runningActions.length).toBeLessThanOrEqual(1);
      return d.info.numActionsTaken - before + Number(d.raw.info?.bufferSize ?? 0);
    };
    await waitFor(accepted, (n) => n >= due.length, 20_000);
    // Nothing else: the refused windows added no run.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await accepted()).toBe(due.length);
    expect(
      (await api(`/v1/schedules/${id}/backfill`, { start: end.toISOString(), end: start.toISOString() })).status,
    ).toBe(422);
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await api(`/v1/schedules/${id}/backfill`, { start: start.toISOString(), end: future })).status).toBe(422);
    expect((await api(`/v1/schedules/${id}/backfill`, { start: 'yesterday', end: future })).status).toBe(400);
    expect((await api('/v1/schedules/not-ours')).status).toBe(404);
    expect((await api('/v1/schedules/not-ours/pause', { note: 'x' })).status).toBe(404);
  }, 120_000);
});
