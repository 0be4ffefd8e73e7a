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
    h = await createHarness();
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

  it('backfills a past window; refuses a reversed or future window and unknown ids', async () => {
    // A window a day back, before this test server existed: none of its times has run. (A window the schedule
    // already ran through would backfill runs whose workflow ids exist, which Temporal does not start again.)
    const end = new Date(Date.now() - 24 * 3600_000);
    const start = new Date(end.getTime() - 11 * 60_000);
    const before = (await h.client.schedule.getHandle('opsflow:system-check').describe()).info.numActionsTaken;
    const res = await api(`/v1/schedules/${id}/backfill`, { start: start.toISOString(), end: end.toISOString() });
    expect(res.status).toBe(202);
    await waitFor(
      async () => (await h.client.schedule.getHandle('opsflow:system-check').describe()).info.numActionsTaken,
      (n) => n >= before + 2,
      20_000,
    );
    expect(
      (await api(`/v1/schedules/${id}/backfill`, { start: end.toISOString(), end: start.toISOString() })).status,
    ).toBe(422);
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await api(`/v1/schedules/${id}/backfill`, { start: start.toISOString(), end: future })).status).toBe(422);
    expect((await api(`/v1/schedules/${id}/backfill`, { start: 'yesterday', end: future })).status).toBe(400);
    expect((await api('/v1/schedules/not-ours')).status).toBe(404);
    expect((await api('/v1/schedules/not-ours/pause', { note: 'x' })).status).toBe(404);
  });
});
