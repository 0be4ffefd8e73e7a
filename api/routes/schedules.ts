/**
 * Schedules API — the crontab, replaced, and operable: list the schedules opsflow declares (with their next
 * runs and the outcome of the last one), pause with a note, unpause, trigger now, backfill a missed window.
 * Only declared (opsflow-managed) ids are accepted: anything else is 404 and never touched.
 */
import { z } from '@hono/zod-openapi';
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowNotFoundError,
  type ScheduleDescription,
  type ScheduleSpec,
} from '@temporalio/client';
import { formatDuration } from '../../lib/durations.js';
import { declareSchedules, type ScheduleDeclaration } from '../../lib/schedules/declarations.js';
import type { ApiDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { json } from '../pagination.js';
import { newRouter } from '../router.js';
import { route } from '../scoped.js';

const ordinal = ['first', 'second', 'third', 'fourth', 'fifth'];

/** A schedule spec in words ("every 5m", "cron 0 9 * * *", "04:00 on Sunday, days 1–7 of the month"). */
export function specInWords(spec: ScheduleSpec): string {
  const parts: string[] = [];
  for (const i of spec.intervals ?? []) {
    const ms = typeof i.every === 'number' ? i.every : undefined;
    parts.push(`every ${ms === undefined ? String(i.every) : formatDuration(ms)}`);
  }
  for (const c of spec.cronExpressions ?? []) parts.push(`cron ${c}`);
  for (const cal of spec.calendars ?? []) {
    const two = (v: unknown) => (typeof v === 'number' ? String(v).padStart(2, '0') : '00');
    const hh = two(cal.hour);
    const mm = two(cal.minute);
    const dom = cal.dayOfMonth as { start: number; end?: number } | undefined;
    const dow = typeof cal.dayOfWeek === 'string' ? cal.dayOfWeek.toLowerCase() : undefined;
    if (dom && dom.end !== undefined && dow && dom.end - dom.start === 6 && dom.start % 7 === 1) {
      parts.push(`${hh}:${mm} on the ${ordinal[(dom.start - 1) / 7]} ${dow} of the month`);
    } else {
      parts.push(`${hh}:${mm}${dow ? ` on ${dow}` : ''}${dom ? ` on days ${dom.start}–${dom.end ?? dom.start}` : ''}`);
    }
  }
  return parts.join('; ');
}

export function scheduleRoutes(deps: ApiDeps) {
  const router = newRouter();
  const declared = () => declareSchedules(deps.config, deps.queues);
  const declaration = (id: string): ScheduleDeclaration => {
    const d = declared().find((x) => x.id === id);
    if (!d) throw new ApiError(404, 'not_found', `schedule ${id} is not an opsflow schedule`);
    return d;
  };
  async function describe(id: string): Promise<ScheduleDescription> {
    try {
      return await deps.temporal.schedule.getHandle(id).describe();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) {
        throw new ApiError(409, 'conflict', `schedule ${id} is declared but not applied yet (start a worker)`);
      }
      throw err;
    }
  }

  async function view(d: ScheduleDeclaration) {
    let s: ScheduleDescription | undefined;
    try {
      s = await deps.temporal.schedule.getHandle(d.id).describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    const last = s?.info.recentActions.at(-1);
    let lastRun: unknown = null;
    if (last) {
      const run = last.action.workflow;
      let outcome = 'unknown';
      try {
        outcome = (await deps.temporal.workflow.getHandle(run.workflowId, run.firstExecutionRunId).describe()).status
          .name;
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        outcome = 'not found (retention passed)';
      }
      lastRun = {
        scheduledAt: last.scheduledAt.toISOString(),
        takenAt: last.takenAt.toISOString(),
        workflowId: run.workflowId,
        outcome,
      };
    }
    return {
      id: d.id,
      description: d.description,
      spec: specInWords(d.spec),
      timezone: d.spec.timezone ?? 'UTC',
      overlap: d.overlap,
      workflowType: d.workflowType,
      applied: s !== undefined,
      paused: s?.state.paused ?? false,
      note: s?.state.note ?? null,
      nextRuns: (s?.info.nextActionTimes ?? []).slice(0, 3).map((t) => t.toISOString()),
      lastRun,
      skippedOverlaps: s?.info.numActionsSkippedOverlap ?? 0,
    };
  }

  const Id = z.object({ id: z.string().min(1).max(200) });

  router.openapi(
    route('read', {
      method: 'get',
      path: '/schedules',
      operationId: 'listSchedules',
      summary: 'Every schedule opsflow runs: spec in words, time zone, pause state and note, next 3 runs, last run',
      responses: { 200: { description: 'Schedules', ...json(z.any()) } },
    }),
    async (c) => c.json({ items: await Promise.all(declared().map(view)) }, 200),
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/schedules/{id}',
      operationId: 'getSchedule',
      summary: 'One schedule',
      request: { params: Id },
      responses: { 200: { description: 'The schedule', ...json(z.any()) } },
    }),
    async (c) => c.json(await view(declaration(c.req.valid('param').id)), 200),
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
      responses: { 200: { description: 'Paused', ...json(z.any()) } },
    }),
    async (c) => {
      const d = declaration(c.req.valid('param').id);
      await describe(d.id);
      await deps.temporal.schedule.getHandle(d.id).pause(c.req.valid('json').note);
      return c.json(await view(d), 200);
    },
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
      responses: { 200: { description: 'Running again', ...json(z.any()) } },
    }),
    async (c) => {
      const d = declaration(c.req.valid('param').id);
      await describe(d.id);
      const body = (c.req.valid('json') as { note?: string } | undefined) ?? {};
      await deps.temporal.schedule.getHandle(d.id).unpause(body.note || 'unpaused through the opsflow API');
      return c.json(await view(d), 200);
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
      const d = declaration(c.req.valid('param').id);
      await describe(d.id);
      await deps.temporal.schedule.getHandle(d.id).trigger(ScheduleOverlapPolicy.ALLOW_ALL);
      return c.json({ id: d.id }, 202);
    },
  );

  router.openapi(
    route('schedules:write', {
      method: 'post',
      path: '/schedules/{id}/backfill',
      operationId: 'backfillSchedule',
      summary: 'Run the schedule for the times it would have run in [start, end) — e.g. after an outage',
      request: {
        params: Id,
        body: {
          required: true,
          ...json(
            z.object({ start: z.iso.datetime({ offset: true }), end: z.iso.datetime({ offset: true }) }).strict(),
          ),
        },
      },
      responses: { 202: { description: 'Backfill requested', ...json(z.object({ id: z.string() })) } },
    }),
    async (c) => {
      const d = declaration(c.req.valid('param').id);
      const body = c.req.valid('json');
      const start = new Date(body.start);
      const end = new Date(body.end);
      if (!(start < end)) throw new ApiError(422, 'unprocessable', 'start must be before end');
      if (end.getTime() > Date.now()) throw new ApiError(422, 'unprocessable', 'end must not be in the future');
      if (end.getTime() - start.getTime() > 31 * 24 * 3600 * 1000) {
        throw new ApiError(422, 'unprocessable', 'backfill at most 31 days at a time');
      }
      await describe(d.id);
      await deps.temporal.schedule.getHandle(d.id).backfill({ start, end, overlap: ScheduleOverlapPolicy.ALLOW_ALL });
      return c.json({ id: d.id }, 202);
    },
  );

  return router;
}
