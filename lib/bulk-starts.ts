/**
 * The pace of bulk work's workflow starts. An import, a large fan-out, a redrive, a recover and the reconcilers
 * each bound their own starts; running together they would still put a hundred start RPCs at once into the
 * Temporal frontend, and a busy server then answers every call late — a PUT's update included, whatever its task
 * priority. So every bulk start of a process goes through one limiter of BULK_START_CONCURRENCY: the server
 * holds at most that many of them from this process at any moment, and an interactive call waits behind no
 * more than those.
 */
import pLimit, { type LimitFunction } from 'p-limit';

const limiters = new Map<number, LimitFunction>();

/** This process's limiter for bulk starts (one per concurrency value: tests build apps with different ones). */
export function bulkStarts(concurrency: number): LimitFunction {
  let limiter = limiters.get(concurrency);
  if (!limiter) {
    limiter = pLimit(concurrency);
    limiters.set(concurrency, limiter);
  }
  return limiter;
}
