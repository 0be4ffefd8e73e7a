/**
 * What each chaos scenario counts, printed as it finishes and appended to test-results/chaos.jsonl, from which
 * test/chaos/report.ts prints the table and writes bench/RESULTS.md's reliability section.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

export interface ScenarioFigures {
  scenario: string;
  /** What the fault was, in words (what was killed or stopped, when, for how long). */
  fault: string;
  /** Work the system said yes to (202s, started runs, due reminders). */
  accepted: number;
  /** Of that, what reached its end (delivered once, terminal recorded state, reminder received). */
  delivered: number;
  lost: number;
  duplicated: number;
  /** Anything else worth the table: refused requests, slowest answer, time to recover. */
  notes: string;
}

export const figuresFile = path.resolve('test-results/chaos.jsonl');

export async function report(f: ScenarioFigures, file = figuresFile): Promise<void> {
  console.log(
    `${path.basename(file, '.jsonl')} ${f.scenario}: accepted ${f.accepted}, delivered ${f.delivered}, lost ${f.lost}, duplicated ${f.duplicated} — ${f.notes}`,
  );
  await mkdir(path.dirname(file), { recursive: true });
  await appendFile(file, `${JSON.stringify({ ...f, at: new Date().toISOString() })}\n`);
}

/** Counts a receiver's requests by webhook-id against the ids that were accepted. */
export function countDeliveries(accepted: string[], received: string[]) {
  const times = new Map<string, number>();
  for (const id of received) times.set(id, (times.get(id) ?? 0) + 1);
  const lost = accepted.filter((id) => !times.has(id));
  const duplicated = [...times.entries()].filter(([, n]) => n > 1).map(([id]) => id);
  return { delivered: accepted.length - lost.length, lost, duplicated };
}

/**
 * Sends one event every `1000 / perSecond` ms without waiting for the previous answer (a busy app does not
 * queue behind a slow API), each with a 5 s client timeout; `stop()` waits for the ones in flight.
 */
export function startLoad(url: string, key: string, type: string, perSecond: number) {
  const answers: { n: number; status: number; ms: number; eventId?: string; error?: string; cause?: string }[] = [];
  const inFlight = new Set<Promise<void>>();
  let n = 0;
  const send = async (i: number) => {
    const t0 = performance.now();
    try {
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type, payload: { n: i }, idempotencyKey: `${type}-${i}` }),
        signal: AbortSignal.timeout(5000),
      });
      const body = (await res.json().catch(() => ({}))) as { eventId?: string };
      answers.push({ n: i, status: res.status, ms: performance.now() - t0, eventId: body.eventId });
    } catch (err) {
      // `fetch failed` with the socket's code (ECONNREFUSED, ECONNRESET, …); a request left unanswered is the
      // 5 s timeout's TimeoutError instead.
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      answers.push({ n: i, status: 0, ms: performance.now() - t0, error: (err as Error).message, cause });
    }
  };
  const timer = setInterval(() => {
    const p = send(n++).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, 1000 / perSecond);
  return {
    answers,
    stop: async () => {
      clearInterval(timer);
      await Promise.all(inFlight);
      return answers;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
