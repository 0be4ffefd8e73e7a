/**
 * The pace of bulk work's workflow starts. An import, a large fan-out, a redrive, a recover and the reconcilers
 * each bound their own starts; running together they would still put a hundred start RPCs at once into the
 * Temporal frontend, and a busy server then answers every call late — a PUT included, whatever its task
 * priority. So every bulk start of a process goes through one limiter of BULK_START_CONCURRENCY: the server
 * holds at most that many of them from this process at any moment, and an interactive call waits behind no
 * more than those.
 *
 * Each job (one import's starts, one redrive's restarts, ...) queues in a lane of its own, and the lanes take the
 * free slots in turn: in one first-come queue, a redrive's thousand restarts waited behind the whole of a
 * 10,000-subscription import's starts and its request outlasted its client (seen in bench:interactive).
 */
import { AsyncResource } from 'node:async_hooks';

/** Runs a task when the limiter gives its lane a slot; its answer is the task's. */
export type Lane = <T>(task: () => Promise<T>) => Promise<T>;

export interface BulkStarts {
  /** A lane for one job: its tasks start in the order given, and lanes with work waiting take slots in turn. */
  lane(): Lane;
  /** Tasks running now. */
  readonly active: number;
}

/** A limiter of `concurrency` slots shared fairly by its lanes. */
export function fairLimiter(concurrency: number): BulkStarts {
  let active = 0;
  /** The lanes with tasks waiting, in the order they get the next slots (a lane is here iff it has some). */
  const turns: Array<Array<() => void>> = [];
  const pump = () => {
    while (active < concurrency && turns.length > 0) {
      const queue = turns.shift()!;
      const run = queue.shift()!;
      if (queue.length > 0) turns.push(queue);
      active++;
      run();
    }
  };
  return {
    get active() {
      return active;
    },
    lane(): Lane {
      const queue: Array<() => void> = [];
      return <T>(task: () => Promise<T>) =>
        new Promise<T>((resolve, reject) => {
          // The task runs in its caller's async context (an API request's Temporal deadline among it).
          const run = AsyncResource.bind(() => {
            Promise.resolve()
              .then(task)
              .then(resolve, reject)
              .finally(() => {
                active--;
                pump();
              });
          });
          queue.push(run);
          if (queue.length === 1) turns.push(queue);
          pump();
        });
    },
  };
}

const limiters = new Map<number, BulkStarts>();

/** This process's limiter for bulk starts (one per concurrency value: tests build apps with different ones). */
export function bulkStarts(concurrency: number): BulkStarts {
  let limiter = limiters.get(concurrency);
  if (!limiter) {
    limiter = fairLimiter(concurrency);
    limiters.set(concurrency, limiter);
  }
  return limiter;
}
