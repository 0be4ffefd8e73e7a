/**
 * Starting many workflows for rows already committed (an event fanned out to its endpoints, a batch import):
 * a bounded number of starts in flight at once — all at once they queue in the Temporal frontend and time each
 * other out — and the ones that went through recorded in batches as they go, so a process that dies halfway
 * leaves the rest, and only the rest, to a reconciler. Every start must be idempotent (a workflow that exists
 * is a no-op), because a start may have gone through without being recorded.
 */
import pLimit, { type LimitFunction } from 'p-limit';

export interface StartOutcome {
  started: number;
  failed: number;
  /** The error of the first start that failed, or of a record that could not be written. */
  error?: Error;
}

/** Started items are recorded this many at a time (or whatever is waiting when the previous write ends). */
const MARK_BATCH = 50;

export async function startAll<T>(
  items: T[],
  opts: {
    /** Starts in flight at once, or a limiter shared with other calls (one per process for background starts). */
    concurrency: number | LimitFunction;
    start: (item: T) => Promise<void>;
    /** Records that these items' workflows exist. A failure only costs the reconciler a repeated start. */
    mark: (items: T[]) => Promise<void>;
  },
): Promise<StartOutcome> {
  const limit = typeof opts.concurrency === 'number' ? pLimit(opts.concurrency) : opts.concurrency;
  let waiting: T[] = [];
  let writing: Promise<void> = Promise.resolve();
  let markError: Error | undefined;
  const write = () => {
    const done = waiting;
    waiting = [];
    writing = writing.then(() =>
      done.length === 0 ? undefined : opts.mark(done).catch((err: unknown) => void (markError ??= err as Error)),
    );
    return writing;
  };
  const results = await Promise.allSettled(
    items.map((item) =>
      limit(async () => {
        await opts.start(item);
        waiting.push(item);
        if (waiting.length >= MARK_BATCH) void write();
      }),
    ),
  );
  await write();
  const started = results.filter((r) => r.status === 'fulfilled').length;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  return { started, failed: items.length - started, error: failed ? (failed.reason as Error) : markError };
}
