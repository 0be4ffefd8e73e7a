/**
 * Fail fast, never lose (issue 18): how long a request may wait for Temporal.
 *
 * Every request runs inside a gRPC deadline for the Temporal calls it makes. While the probe says Temporal
 * answers, the deadline is a backstop (10 s) that normal calls never reach; while it says Temporal is down, the
 * deadline is short, so a start fails in about a second and the error handler answers 503 `unavailable`.
 * `POST /v1/events` gets the shortest: the event and its deliveries are committed before any start, and a start
 * that fails is the reconciler's (202 either way). Calls that wait on purpose (a dry run's result, a system
 * check, an update) set a longer deadline of their own around the wait (lib/temporal-deadline.ts).
 */
import type { ConnectionLike as Connection } from '@temporalio/client';
import type { MiddlewareHandler } from 'hono';
import type { TemporalProbe } from '../lib/temporal-probe.js';

export const BACKSTOP_MS = 10_000;
export const DOWN_MS = 1_000;
export const DOWN_EVENTS_MS = 300;

/** gRPC status codes that mean "Temporal did not answer": DEADLINE_EXCEEDED and UNAVAILABLE. */
const UNREACHABLE_CODES = new Set([4, 14]);

export function temporalBudget(connection: Connection, probe: TemporalProbe | undefined): MiddlewareHandler {
  return async (c, next) => {
    const down = probe !== undefined && !probe.reachable;
    const events = c.req.method === 'POST' && c.req.path === '/v1/events';
    const ms = down ? (events ? DOWN_EVENTS_MS : DOWN_MS) : BACKSTOP_MS;
    await connection.withDeadline(Date.now() + ms, () => next());
  };
}

/** gRPC CANCELLED: the SDK gave up a call it was waiting on (seen: an update-with-start under heavy load). */
const CANCELLED = 1;

/** Whether the error, or one of its causes, carries one of these gRPC status codes. */
function hasGrpcCode(err: unknown, codes: ReadonlySet<number>): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number' && codes.has(code)) return true;
  }
  return false;
}

/** The error, or one of its causes, is a gRPC deadline or unavailability: Temporal did not answer. */
export function isTemporalUnreachable(err: unknown): boolean {
  return hasGrpcCode(err, UNREACHABLE_CODES);
}

/**
 * A Temporal call was cancelled before its answer: the caller may try again (503), but it says nothing of whether
 * Temporal is reachable, so the probe is not told.
 */
export function isTemporalCallCancelled(err: unknown): boolean {
  return hasGrpcCode(err, new Set([CANCELLED]));
}
