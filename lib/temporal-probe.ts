/**
 * Whether Temporal answers now, known without a request having to find out the slow way. The SDK retries an
 * unreachable server for many seconds inside every call; the API asks this probe first and, while Temporal is
 * down, gives its calls a deadline short enough to answer in about a second (api/temporal-budget.ts).
 *
 * One `getSystemInfo` with a short deadline every `intervalMs`; `stop()` waits for the call in flight, so no
 * SDK retry timer outlives the connection.
 */
import type { ConnectionLike as Connection } from '@temporalio/client';

export interface TemporalProbe {
  /** Did the last check get an answer (true before the first one ends). */
  readonly reachable: boolean;
  readonly lastError: string | undefined;
  /** A request saw Temporal unreachable: believe it until the next successful check. */
  noteUnreachable(reason: string): void;
  stop(): Promise<void>;
}

export function startTemporalProbe(
  connection: Pick<Connection, 'withDeadline' | 'workflowService'>,
  opts: { intervalMs?: number; timeoutMs?: number } = {},
): TemporalProbe {
  const intervalMs = opts.intervalMs ?? 500;
  const timeoutMs = opts.timeoutMs ?? 400;
  let reachable = true;
  let lastError: string | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;

  const loop = (async () => {
    while (!stopped) {
      try {
        await connection.withDeadline(Date.now() + timeoutMs, () => connection.workflowService.getSystemInfo({}));
        reachable = true;
        lastError = undefined;
      } catch (err) {
        reachable = false;
        lastError = (err as Error).message;
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, intervalMs).unref();
      });
    }
  })();

  return {
    get reachable() {
      return reachable;
    },
    get lastError() {
      return lastError;
    },
    noteUnreachable(reason) {
      reachable = false;
      lastError = reason;
    },
    stop: async () => {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
