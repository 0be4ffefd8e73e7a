/**
 * The schedules opsflow declares, as operators see and steer them: each one's spec in words, pause state and
 * note, next runs and the outcome of the last run; pause, unpause, trigger and backfill. Only declared
 * (opsflow-managed) ids are accepted: anything else is not found and never touched.
 */
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleSpec,
} from '@temporalio/client';
import { msNumberToTs, tsToMs } from '@temporalio/common/lib/time.js';
import type { Config } from '../config.js';
import { formatDuration } from '../durations.js';
import { ServiceError } from '../errors.js';
import { actorLabel, type Actor } from '../keys/scopes.js';
import type { Logger } from '../logger.js';
import type { TaskQueues } from '../task-queues.js';
import { declareSchedules, type ScheduleDeclaration } from './declarations.js';

export class ScheduleError extends ServiceError {}

export interface ScheduleServiceDeps {
  config: Config;
  queues: TaskQueues;
  temporal: Client;
  log?: Logger;
}

/** The last run a schedule started, and how it went (a workflow status, or why it is unknown). */
export interface ScheduleRun {
  scheduledAt: string;
  takenAt: string;
  workflowId: string;
  outcome: string;
}

export interface ScheduleView {
  id: string;
  description: string;
  /** The spec in words: "every 5m", "cron 0 9 * * *", "04:00 on the first sun of the month". */
  spec: string;
  timezone: string;
  overlap: string;
  workflowType: string;
  /** Whether a worker has created it on the server yet. */
  applied: boolean;
  paused: boolean;
  note: string | null;
  nextRuns: string[];
  lastRun: ScheduleRun | null;
  skippedOverlaps: number;
}

/** The widest window one backfill may cover. */
export const BACKFILL_MAX_DAYS = 31;

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

export function createScheduleService(deps: ScheduleServiceDeps) {
  const declared = () => declareSchedules(deps.config, deps.queues);
  const declaration = (id: string): ScheduleDeclaration => {
    const d = declared().find((x) => x.id === id);
    if (!d) throw new ScheduleError('not_found', `schedule ${id} is not an opsflow schedule`);
    return d;
  };
  /** The declared schedule's handle, once the server has it (a worker applies declarations at start). */
  async function applied(id: string) {
    const d = declaration(id);
    const handle = deps.temporal.schedule.getHandle(d.id);
    try {
      await handle.describe();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) {
        throw new ScheduleError('conflict', `schedule ${d.id} is declared but not applied yet (start a worker)`);
      }
      throw err;
    }
    return { d, handle };
  }

  /**
   * How many times the schedule's spec matches in [start, end), as the server computes them — counted page by
   * page (the server answers at most 1,000 times a call) until the window ends or the count passes `limit`.
   */
  async function matchingTimes(scheduleId: string, start: Date, end: Date, limit: number) {
    let runs = 0;
    let from = start.getTime();
    for (;;) {
      const { startTime } = await deps.temporal.workflowService.listScheduleMatchingTimes({
        namespace: deps.temporal.options.namespace,
        scheduleId,
        startTime: msNumberToTs(from),
        // The server's end is inclusive; backfill's window is [start, end).
        endTime: msNumberToTs(end.getTime() - 1),
      });
      const times = startTime ?? [];
      runs += times.length;
      const last = times.at(-1);
      if (times.length < 1000 || !last) return { runs, exact: true };
      if (runs > limit) return { runs, exact: false };
      from = tsToMs(last) + 1;
    }
  }

  async function lastRun(s: ScheduleDescription | undefined): Promise<ScheduleRun | null> {
    const last = s?.info.recentActions.at(-1);
    if (!last) return null;
    const run = last.action.workflow;
    let outcome: string;
    try {
      outcome = (await deps.temporal.workflow.getHandle(run.workflowId, run.firstExecutionRunId).describe()).status
        .name;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      outcome = 'not found (retention passed)';
    }
    return {
      scheduledAt: last.scheduledAt.toISOString(),
      takenAt: last.takenAt.toISOString(),
      workflowId: run.workflowId,
      outcome,
    };
  }

  async function view(d: ScheduleDeclaration): Promise<ScheduleView> {
    let s: ScheduleDescription | undefined;
    try {
      s = await deps.temporal.schedule.getHandle(d.id).describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    return {
      id: d.id,
      description: d.description,
      spec: specInWords(d.spec),
      timezone: d.spec.timezone ?? 'UTC',
      overlap: d.overlap ?? ScheduleOverlapPolicy.SKIP, // the server's default when a policy is not given
      workflowType: d.workflowType,
      applied: s !== undefined,
      paused: s?.state.paused ?? false,
      note: s?.state.note ?? null,
      nextRuns: (s?.info.nextActionTimes ?? []).slice(0, 3).map((t) => t.toISOString()),
      lastRun: await lastRun(s),
      skippedOverlaps: s?.info.numActionsSkippedOverlap ?? 0,
    };
  }

  return {
    list: () => Promise.all(declared().map(view)),
    get: (id: string) => view(declaration(id)),
    async pause(id: string, note: string): Promise<ScheduleView> {
      const { d, handle } = await applied(id);
      await handle.pause(note);
      return view(d);
    },
    async unpause(id: string, note?: string): Promise<ScheduleView> {
      const { d, handle } = await applied(id);
      await handle.unpause(note || 'unpaused through the opsflow API');
      return view(d);
    },
    /** Runs it now, once, whatever the overlap policy. */
    async trigger(id: string): Promise<void> {
      const { handle } = await applied(id);
      await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
    },
    /**
     * Runs it for the times it would have run in [start, end): after an outage. The times are counted from the
     * schedule's spec on the server before anything starts, and a window of more than `backfillMaxRuns` is
     * refused whole; the runs go one after another, never two at once (BUFFER_ALL: BUFFER_ONE would drop every run past the second).
     */
    async backfill(id: string, start: Date, end: Date, by: Actor): Promise<{ runs: number }> {
      declaration(id);
      if (!(start < end)) throw new ScheduleError('unprocessable', 'start must be before end');
      if (end.getTime() > Date.now()) throw new ScheduleError('unprocessable', 'end must not be in the future');
      if (end.getTime() - start.getTime() > BACKFILL_MAX_DAYS * 24 * 3600 * 1000) {
        throw new ScheduleError('unprocessable', `backfill at most ${BACKFILL_MAX_DAYS} days at a time`);
      }
      const { d, handle } = await applied(id);
      const max = deps.config.backfillMaxRuns;
      const { runs, exact } = await matchingTimes(d.id, start, end, max);
      if (runs > max) {
        throw new ScheduleError(
          'unprocessable',
          `the window holds ${exact ? '' : 'at least '}${runs} runs of ${d.id}; one backfill starts at most ${max} (SCHEDULE_BACKFILL_MAX_RUNS): narrow the window`,
          { runs, exact, maxRuns: max },
        );
      }
      if (runs === 0) return { runs };
      await handle.backfill({ start, end, overlap: ScheduleOverlapPolicy.BUFFER_ALL });
      deps.log?.info({ schedule: d.id, start, end, runs, by: actorLabel(by) }, 'schedule backfill requested');
      return { runs };
    },
  };
}

export type ScheduleService = ReturnType<typeof createScheduleService>;
