/**
 * A call that waits on purpose (a dry run's result, a system check, an update) inside an API request: the
 * request runs under a short gRPC deadline (api/temporal-budget.ts), so the wait gets a deadline of its own.
 */
import type { ConnectionLike as Connection } from '@temporalio/client';
import type { TemporalProbe } from './temporal-probe.js';

/**
 * Runs `fn` (a call that waits on purpose) with a deadline of its own instead of the request's backstop —
 * unless Temporal is down, when the request's short deadline stays.
 */
export function waitLonger<T>(
  deps: { temporal: { connection: Connection }; probe?: TemporalProbe },
  ms: number,
  fn: () => Promise<T>,
): Promise<T> {
  if (deps.probe && !deps.probe.reachable) return fn();
  return deps.temporal.connection.withDeadline(Date.now() + ms, fn);
}
