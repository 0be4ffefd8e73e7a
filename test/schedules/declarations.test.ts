import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { declareSchedules, type ScheduleDeclaration } from '../../lib/schedules/declarations.js';
import { applySchedules } from '../../worker/schedules.js';
import { createHarness, type Harness } from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';

describe('schedules as code', () => {
  let h: Harness;
  let prefix: string;
  const decl = (id: string, every: Duration): ScheduleDeclaration => ({
    id: `${prefix}:${id}`,
    description: `test ${id}`,
    spec: { intervals: [{ every }], timezone: 'UTC' },
    workflowType: 'systemCheck',
    args: [{ httpUrls: [], timeoutMs: 1000 }],
    taskQueue: h.queues.system,
    overlap: ScheduleOverlapPolicy.SKIP,
    catchupWindow: '1 minute',
  });

  async function ids(): Promise<string[]> {
    const found: string[] = [];
    for await (const s of h.client.schedule.list()) if (s.scheduleId.startsWith(prefix)) found.push(s.scheduleId);
    return found.sort();
  }

  beforeAll(async () => {
    h = await createHarness();
    prefix = `test-${h.config.taskQueuePrefix}`;
  });
  afterAll(async () => {
    for (const id of await ids()) await h.client.schedule.getHandle(id).delete();
    await h.close();
  });

  it('declares the system check every 5 minutes, in the configured time zone, overlap SKIP', () => {
    const [systemCheck] = declareSchedules({ ...h.config, timezone: 'Europe/Berlin' }, h.queues);
    expect(systemCheck).toMatchObject({
      id: 'opsflow:system-check',
      workflowType: 'systemCheck',
      overlap: ScheduleOverlapPolicy.SKIP,
      spec: { intervals: [{ every: '5 minutes' }], timezone: 'Europe/Berlin' },
    });
    expect(systemCheck?.catchupWindow).toBeTruthy();
  });

  it('redrives up to 50 dead letters every 6 hours, and daily deletes those resolved more than 30 days ago (the defaults)', async () => {
    const all = declareSchedules({ ...loadConfig({}), timezone: 'Europe/Berlin' }, h.queues);
    const redrive = all.find((d) => d.id === 'opsflow:webhook-dlq-redrive')!;
    const cleanup = all.find((d) => d.id === 'opsflow:webhook-dlq-cleanup')!;
    expect(redrive).toMatchObject({ args: [{ limit: 50 }], overlap: ScheduleOverlapPolicy.SKIP });
    expect(cleanup.args).toEqual([{ olderThanMs: 30 * 24 * 3600 * 1000 }]);
    // The server's next runs of the real specs: 6 hours apart at 00, 06, 12, 18 local time; the cleanup daily.
    // Made directly (not applied: applying deletes every other managed schedule), then removed.
    const nextRuns = async (d: ScheduleDeclaration, id: string, n: number) => {
      const handle = await h.client.schedule.create({
        scheduleId: id,
        spec: d.spec,
        action: { type: 'startWorkflow', workflowType: d.workflowType, taskQueue: h.queues.webhooks, args: d.args },
      });
      try {
        return (await handle.describe()).info.nextActionTimes.slice(0, n);
      } finally {
        await handle.delete();
      }
    };
    const next = await nextRuns(redrive, `${prefix}:dlq-redrive-spec`, 4);
    expect(next).toHaveLength(4);
    const local = (t: Date) =>
      new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', timeZone: 'Europe/Berlin' }).format(t);
    // (A daylight-saving change makes one gap 5 or 7 hours; the local times stay.)
    for (let i = 1; i < next.length; i++) {
      expect(Math.abs(next[i]!.getTime() - next[i - 1]!.getTime() - 6 * 3600_000)).toBeLessThanOrEqual(3600_000);
    }
    for (const t of next) expect(['00:00', '06:00', '12:00', '18:00']).toContain(local(t));
    const daily = await nextRuns(cleanup, `${prefix}:dlq-cleanup-spec`, 2);
    expect(daily.map(local)).toEqual(['03:30', '03:30']);
  });

  it('runs the restore drill on the first Sunday of the month at 04:00 and the freshness check hourly', async () => {
    const all = declareSchedules({ ...h.config, timezone: 'Europe/Berlin' }, h.queues);
    const drill = all.find((d) => d.id === 'opsflow:backup-restore-drill')!;
    const freshness = all.find((d) => d.id === 'opsflow:backup-freshness')!;
    expect(freshness.spec.cronExpressions).toEqual(['17 * * * *']);
    // Ask the server for the next runs of the real spec: calendar fields are ANDed there.
    const id = `${prefix}:drill-spec`;
    await applySchedules(h.client, [{ ...drill, id, taskQueue: h.queues.backups }]);
    const d = await h.client.schedule.getHandle(id).describe();
    const next = d.info.nextActionTimes.slice(0, 3);
    expect(next).toHaveLength(3);
    for (const t of next) {
      const parts = Object.fromEntries(
        new Intl.DateTimeFormat('en-GB', {
          timeZone: 'Europe/Berlin',
          weekday: 'short',
          day: 'numeric',
          hour: '2-digit',
          minute: '2-digit',
          hourCycle: 'h23',
        })
          .formatToParts(t)
          .map((p) => [p.type, p.value]),
      );
      expect(parts).toMatchObject({ weekday: 'Sun', hour: '04', minute: '00' });
      expect(Number(parts.day)).toBeLessThanOrEqual(7);
    }
    await h.client.schedule.getHandle(id).delete();
  });

  it('applied twice, creates once and leaves one schedule per declaration', async () => {
    const declarations = [decl('a', '1 hour'), decl('b', '2 hours')];
    const first = await applySchedules(h.client, declarations);
    expect(first.created.sort()).toEqual([`${prefix}:a`, `${prefix}:b`]);
    const second = await applySchedules(h.client, declarations);
    expect(second).toMatchObject({ created: [], updated: [], deleted: [] });
    expect(second.unchanged.sort()).toEqual([`${prefix}:a`, `${prefix}:b`]);
    // Two workers starting at once.
    await Promise.all([applySchedules(h.client, declarations), applySchedules(h.client, declarations)]);
    const described = await h.client.schedule.getHandle(`${prefix}:a`).describe();
    expect(described.memo).toEqual({ opsflowManaged: true });
    expect(described.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
  });

  it('updates a changed declaration and keeps the operator pause', async () => {
    const handle = h.client.schedule.getHandle(`${prefix}:a`);
    await handle.pause('investigating');
    const result = await applySchedules(h.client, [decl('a', '3 hours'), decl('b', '2 hours')]);
    expect(result.updated).toEqual([`${prefix}:a`]);
    expect(result.unchanged).toEqual([`${prefix}:b`]);
    const d = await handle.describe();
    expect(d.spec.intervals?.[0]?.every).toBe(3 * 3600 * 1000);
    expect(d.state.paused).toBe(true);
    expect(d.state.note).toBe('investigating');
  });

  it('deletes managed schedules no longer declared and never touches others', async () => {
    await h.client.schedule.create({
      scheduleId: `${prefix}:not-ours`,
      spec: { intervals: [{ every: '1 day' }] },
      action: { type: 'startWorkflow', workflowType: 'systemCheck', taskQueue: h.queues.system, args: [] },
    });
    const result = await applySchedules(h.client, [decl('a', '3 hours')]);
    // Other managed schedules (a worker process started by another test) may go too; ours must.
    expect(result.deleted.filter((id) => id.startsWith(prefix))).toEqual([`${prefix}:b`]);
    // Listing reads the visibility store, which trails deletions by a moment on a SQL-backed server.
    const want = [`${prefix}:a`, `${prefix}:not-ours`];
    expect(await waitFor(ids, (found) => JSON.stringify(found) === JSON.stringify(want), 10_000)).toEqual(want);
  });
});
