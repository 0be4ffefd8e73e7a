/**
 * Schedules API — the crontab, replaced, and operable: list the schedules opsflow declares (with their next
 * runs and the outcome of the last one), pause with a note, unpause, trigger now, backfill a missed window.
 * The schedule service (lib/schedules/service.ts) does the work; only declared ids are accepted.
 */
import { z } from '@hono/zod-openapi';
import { createScheduleService } from '../../../lib/schedules/service.js';
import { actorOf } from '../../auth.js';
import type { ApiDeps } from '../../deps.js';
import { json } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';

const ScheduleRun = z
  .object({
    scheduledAt: z.iso.datetime(),
    takenAt: z.iso.datetime(),
    workflowId: z.string(),
    outcome: z.string().openapi({ description: 'The run’s workflow status, or why it is not known' }),
  })
  .openapi('ScheduleRun');

const Schedule = z
  .object({
    id: z.string(),
    description: z.string(),
    spec: z.string().openapi({ description: 'The spec in words: "every 5m", "cron 0 9 * * *", …' }),
    timezone: z.string(),
    overlap: z.string(),
    workflowType: z.string(),
    applied: z.boolean().openapi({ description: 'Whether a worker has created it on the server yet' }),
    paused: z.boolean(),
    note: z.string().nullable(),
    nextRuns: z.array(z.iso.datetime()),
    lastRun: ScheduleRun.nullable(),
    skippedOverlaps: z.number().int(),
  })
  .openapi('Schedule');

export function scheduleRoutes(deps: ApiDeps) {
  const router = newRouter();
  const schedules = createScheduleService({
    config: deps.config,
    queues: deps.queues,
    temporal: deps.temporal,
    log: deps.log,
  });
  const Id = z.object({ id: z.string().min(1).max(200) });

  router.openapi(
    route('read', {
      method: 'get',
      path: '/schedules',
      operationId: 'listSchedules',
      summary: 'Every schedule opsflow runs: spec in words, time zone, pause state and note, next 3 runs, last run',
      responses: { 200: { description: 'Schedules', ...json(z.object({ items: z.array(Schedule) })) } },
    }),
    async (c) => c.json({ items: await schedules.list() }, 200),
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/schedules/{id}',
      operationId: 'getSchedule',
      summary: 'One schedule',
      request: { params: Id },
      responses: { 200: { description: 'The schedule', ...json(Schedule) } },
    }),
    async (c) => c.json(await schedules.get(c.req.valid('param').id), 200),
  );

  router.openapi(
    route('schedules:write', {
      method: 'post',
      path: '/schedules/{id}/pause',
      operationId: 'pauseSchedule',
      summary: 'Pause with a note saying why (shown in the UI and here)',
      request: {
        params: Id,
        body: { required: true, ...json(z.object({ note: z.string().trim().min(1).max(500) }).strict()) },
      },
      responses: { 200: { description: 'Paused', ...json(Schedule) } },
    }),
    async (c) => c.json(await schedules.pause(c.req.valid('param').id, c.req.valid('json').note), 200),
  );

  router.openapi(
    route('schedules:write', {
      method: 'post',
      path: '/schedules/{id}/unpause',
      operationId: 'unpauseSchedule',
      summary: 'Unpause',
      request: {
        params: Id,
        body: { required: false, ...json(z.object({ note: z.string().trim().max(500).optional() }).strict()) },
      },
      responses: { 200: { description: 'Running again', ...json(Schedule) } },
    }),
    async (c) => {
      const body = (c.req.valid('json') as { note?: string } | undefined) ?? {};
      return c.json(await schedules.unpause(c.req.valid('param').id, body.note), 200);
    },
  );

  router.openapi(
    route('schedules:write', {
      method: 'post',
      path: '/schedules/{id}/trigger',
      operationId: 'triggerSchedule',
      summary: 'Run now (once, whatever the overlap policy)',
      request: { params: Id },
      responses: { 202: { description: 'Triggered', ...json(z.object({ id: z.string() })) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      await schedules.trigger(id);
      return c.json({ id }, 202);
    },
  );

  router.openapi(
    route('schedules:write', {
      method: 'post',
      path: '/schedules/{id}/backfill',
      operationId: 'backfillSchedule',
      summary: 'Run the schedule for the times it would have run in [start, end) — e.g. after an outage',
      description:
        "The times are counted from the schedule's spec before anything starts: a window holding more than SCHEDULE_BACKFILL_MAX_RUNS (default 100) runs is refused whole (422). The runs go one after another, never two at once (overlap BUFFER_ALL).",
      request: {
        params: Id,
        body: {
          required: true,
          ...json(
            z.object({ start: z.iso.datetime({ offset: true }), end: z.iso.datetime({ offset: true }) }).strict(),
          ),
        },
      },
      responses: {
        202: {
          description: 'Backfill requested',
          ...json(z.object({ id: z.string(), runs: z.number().int().openapi({ description: 'Runs it starts' }) })),
        },
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const { runs } = await schedules.backfill(id, new Date(body.start), new Date(body.end), actorOf(c));
      return c.json({ id, runs }, 202);
    },
  );

  return router;
}
