/**
 * One write for many callers: the first call writes at once; calls made while that write is in flight wait for
 * it and then go out together in the next one (at most `maxBatch` items each). Under load, N concurrent callers
 * cost a handful of statements instead of N; alone, a call costs what it did. Each caller's promise settles
 * with the write that held its items (a failed write rejects every caller in it, and only them).
 */
export function coalescing<T>(write: (items: T[]) => Promise<void>, maxBatch = 1000): (items: T[]) => Promise<void> {
  interface Waiter {
    items: T[];
    resolve: () => void;
    reject: (err: unknown) => void;
  }
  let queued: Waiter[] = [];
  let busy = false;

  async function pump(): Promise<void> {
    busy = true;
    while (queued.length > 0) {
      // Whole callers only: a caller's items never straddle two writes.
      let count = 0;
      let take = 0;
      while (take < queued.length && (take === 0 || count + queued[take]!.items.length <= maxBatch)) {
        count += queued[take]!.items.length;
        take += 1;
      }
      const batch = queued.slice(0, take);
      queued = queued.slice(take);
      try {
        await write(batch.flatMap((w) => w.items));
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    busy = false;
  }

  return (items) =>
    new Promise<void>((resolve, reject) => {
      if (items.length === 0) return resolve();
      queued.push({ items, resolve, reject });
      if (!busy) void pump();
    });
}
