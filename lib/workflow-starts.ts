/**
 * Starting many workflows for rows already committed (an event fanned out to its endpoints, a batch import):
 * a bounded number of starts in flight at once — all at once they queue in the Temporal frontend and time each
 * other out — and the ones that went through recorded in batches as they go, so a process that dies halfway
 * leaves the rest, and only the rest, to a reconciler. Every start must be idempotent (a workflow that exists
 * is a no-op), because a start may have gone through without being recorded.
 */
import type { ConnectionLike } from '@temporalio/client';
import pLimit from 'p-limit';
import type { BulkStarts, Lane } from './bulk-starts.js';

export interface StartOutcome {
  started: number;
  failed: number;
  /** The error of the first start that failed, or of a record that could not be written. */
  error?: Error;
}

/**
 * How long one start may wait for Temporal, from when it is sent. Starts queued by an API request run after its
 * answer (an import's, a large fan-out's beyond the first): under the request's own deadline (the 10 s backstop,
 * api/temporal-budget.ts) every start still queued at that point failed at once, unsent, and the whole rest of a
 * 1,000-subscription import was left to the reconciler. Each start has this deadline of its own instead.
 */
export const START_CALL_MS = 30_000;

/** Started items are recorded this many at a time (or whatever is waiting when the previous write ends). */
const MARK_BATCH = 50;

export async function startAll<T>(
  items: T[],
  opts: {
    /** Starts in flight at once, or a limiter shared with other calls (one per process for background starts). */
    concurrency: number | BulkStarts;
    start: (item: T) => Promise<void>;
    /** Records that these items' workflows exist. A failure only costs the reconciler a repeated start. */
    mark: (items: T[]) => Promise<void>;
    /** The connection the starts go through: a start gets START_CALL_MS of its own on it (see `ownDeadline`). */
    connection: Pick<ConnectionLike, 'withDeadline'>;
    /**
     * Asked as each start is sent: whether it gets its own deadline (default: always) or keeps its caller's — a
     * publish's starts sent before its answer keep the request's, short while Temporal is known to be down.
     */
    ownDeadline?: () => boolean;
  },
): Promise<StartOutcome> {
  const limit: Lane = typeof opts.concurrency === 'number' ? pLimit(opts.concurrency) : opts.concurrency.lane();
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
        if (opts.ownDeadline?.() ?? true) {
          await opts.connection.withDeadline(Date.now() + START_CALL_MS, () => opts.start(item));
        } else await opts.start(item);
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
