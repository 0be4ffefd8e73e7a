/**
 * Per-endpoint rate limits: a pacer in PostgreSQL that every worker and both delivery paths share.
 *
 * Two parts. Slots say when each attempt should go: a rate-limited endpoint has a next free send slot
 * (opsflow.endpoint_pacing), and an attempt about to send takes it in one atomic statement — slots are spaced
 * evenly, `WINDOW_MS / rate` apart, by PostgreSQL's clock. A slot within MAX_INLINE_WAIT_MS is waited for in the
 * activity; a later one is kept, and the delivery workflow sleeps on a durable timer until WAKE_LEAD_MS before it,
 * then attempts again holding it (a held slot already past — the timer or the worker was late — goes at once).
 * Admission makes it exact: at its slot, a send is admitted only if fewer than `rate` sends were admitted in the
 * WINDOW_MS before, checked and recorded in one statement on the endpoint's last `rate` send times — so a worker
 * that woke late, or one whose clock runs ahead, cannot crowd the window; it waits the few ms the check names.
 * Deliveries wait; nothing is dropped or dead-lettered for the limit.
 *
 * Why WINDOW_MS is a little over a second: a request arrives some milliseconds after its admission (the write,
 * the network, a garbage collection in between), and that delay varies: on a loaded test machine by over 50 ms
 * now and then. With `rate` admissions per 1,100 ms, variations under 100 ms cannot put `rate + 1` requests into
 * one second at the receiver. The price is a sustained rate of 91% of the limit.
 */
import type { Pool } from '../db.js';

/** The window admission counts in: a second and a margin for the variation in arrival delay. */
export const WINDOW_MS = 1100;
/**
 * A slot nearer than this is waited for inside the attempt; a later one by a durable timer in the workflow. Kept
 * short: an attempt waiting inline holds one of the worker's activity slots, which other endpoints' deliveries need
 * (at 3 s, a 10,000-delivery recover held enough of them to put an unlimited endpoint's p99 at 4 s).
 */
export const MAX_INLINE_WAIT_MS = 1000;
/** The durable timer ends this long before the held slot (timer and activity start latency mostly fit in it). */
export const WAKE_LEAD_MS = 500;

export const slotIntervalMicros = (perSecond: number) => Math.round((WINDOW_MS * 1000) / perSecond);

/** Send at `slotAt`, after `waitMs`, or come back at `slotAt` (held: PostgreSQL's timestamp as text), waking in `wakeInMs`. */
export type Pace =
  { kind: 'send'; slotAt: string; waitMs: number } | { kind: 'later'; slotAt: string; wakeInMs: number };

interface SlotRow {
  slot_at: string;
  wait_ms: number;
}

/** Takes the endpoint's next free slot. */
async function takeSlot(pool: Pool, endpointId: string, perSecond: number): Promise<SlotRow> {
  const { rows } = await pool.query<SlotRow>(
    `INSERT INTO opsflow.endpoint_pacing AS p (endpoint_id, next_slot_at)
     VALUES ($1, clock_timestamp() + $2 * interval '1 microsecond')
     ON CONFLICT (endpoint_id) DO UPDATE
       SET next_slot_at = greatest(p.next_slot_at, clock_timestamp()) + $2 * interval '1 microsecond'
     RETURNING (next_slot_at - $2 * interval '1 microsecond')::text AS slot_at,
       (extract(epoch FROM next_slot_at - $2 * interval '1 microsecond' - clock_timestamp()) * 1000)::float8 AS wait_ms`,
    [endpointId, slotIntervalMicros(perSecond)],
  );
  return rows[0]!;
}

/** How long until a held slot, by PostgreSQL's clock (negative: it has passed). */
async function untilSlot(pool: Pool, slotAt: string): Promise<number> {
  const { rows } = await pool.query<{ wait_ms: number }>(
    `SELECT (extract(epoch FROM $1::timestamptz - clock_timestamp()) * 1000)::float8 AS wait_ms`,
    [slotAt],
  );
  return rows[0]!.wait_ms;
}

/**
 * When an attempt to an endpoint limited to `perSecond` may send: at its held slot, else at the next free one. Only
 * rate-limited endpoints come here; the send itself waits for admission (`admitted`).
 */
export async function pace(pool: Pool, endpointId: string, perSecond: number, held?: string): Promise<Pace> {
  // A held slot already past still goes first: admission, not the slot, keeps the limit.
  const slot =
    held !== undefined
      ? { slot_at: held, wait_ms: await untilSlot(pool, held) }
      : await takeSlot(pool, endpointId, perSecond);
  if (slot.wait_ms <= MAX_INLINE_WAIT_MS)
    return { kind: 'send', slotAt: slot.slot_at, waitMs: Math.max(0, slot.wait_ms) };
  return { kind: 'later', slotAt: slot.slot_at, wakeInMs: Math.round(slot.wait_ms - WAKE_LEAD_MS) };
}

/**
 * Admits one send now if fewer than `perSecond` were admitted in the last WINDOW_MS (recording it), else says how
 * long until one may be.
 */
async function admit(
  pool: Pool,
  endpointId: string,
  perSecond: number,
): Promise<{ admitted: boolean; waitMs: number }> {
  const { rows } = await pool.query<{ admitted: boolean; wait_ms: number | null }>(
    `WITH admitted AS (
       INSERT INTO opsflow.endpoint_pacing AS p (endpoint_id, next_slot_at, recent)
       VALUES ($1, clock_timestamp(), ARRAY[clock_timestamp()])
       ON CONFLICT (endpoint_id) DO UPDATE
         SET recent = (p.recent || clock_timestamp())[greatest(1, cardinality(p.recent) + 2 - $2):]
         WHERE cardinality(p.recent) < $2
            OR p.recent[cardinality(p.recent) - $2 + 1] <= clock_timestamp() - $3 * interval '1 millisecond'
       RETURNING 1
     )
     SELECT EXISTS (SELECT 1 FROM admitted) AS admitted,
       (SELECT (extract(epoch FROM p.recent[cardinality(p.recent) - $2 + 1] + $3 * interval '1 millisecond'
                 - clock_timestamp()) * 1000)::float8
        FROM opsflow.endpoint_pacing p WHERE p.endpoint_id = $1) AS wait_ms`,
    [endpointId, perSecond, WINDOW_MS],
  );
  const row = rows[0]!;
  return { admitted: row.admitted, waitMs: Math.max(1, row.wait_ms ?? 1) };
}

/**
 * Waits until a send to the endpoint is admitted (and records it), for at most MAX_INLINE_WAIT_MS: false when
 * other senders kept the window full that long (the caller takes a new slot rather than hold its activity slot).
 * `sleep` is the caller's (cancellable).
 */
export async function admitted(
  pool: Pool,
  endpointId: string,
  perSecond: number,
  sleep: (ms: number) => Promise<void>,
): Promise<boolean> {
  const deadline = Date.now() + MAX_INLINE_WAIT_MS;
  for (;;) {
    const a = await admit(pool, endpointId, perSecond);
    if (a.admitted) return true;
    if (Date.now() + a.waitMs > deadline) return false;
    await sleep(a.waitMs);
  }
}
