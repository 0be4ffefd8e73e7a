/**
 * Per-endpoint rate limits: a pacer in PostgreSQL that every worker and both delivery paths share.
 *
 * Two parts. Slots say when each attempt should go: a rate-limited endpoint has a next free send slot
 * (opsflow.endpoint_pacing), and an attempt about to send takes it in one atomic statement — slots are spaced
 * evenly, `WINDOW_MS / rate` apart, by PostgreSQL's clock. A slot within MAX_INLINE_WAIT_MS is waited for in the
 * activity; a later one is kept, and the delivery workflow sleeps on a durable timer until WAKE_LEAD_MS before it,
 * then attempts again holding it (a held slot already past — the timer or the worker was late — goes at once).
 * Admission makes it exact: at its slot, a send is admitted only if fewer than `rate` sends count in the WINDOW_MS
 * before, checked and recorded in one statement on the endpoint's row — so a worker that woke late, or one whose
 * clock runs ahead, cannot crowd the window; it waits the few ms the check names.
 * Deliveries wait; nothing is dropped or dead-lettered for the limit.
 *
 * What a send counts as: its request reaches the receiver at some moment between its admission and its answer, and
 * only the receiver knows when. So a send counts from its admission until its answer came back (`sent`), and while
 * it is in flight as if it answered at its timeout: whenever the receiver saw it, it was inside that span, so no
 * second at the receiver can hold more than `rate`. (The first cut counted the admission moment alone with a 100 ms
 * margin, and a loaded CI machine once put 6 in a second at a receiver limited to 5.) A receiver that answers slowly
 * is sent to less often: at `rate` in flight nothing more goes until answers come back. A worker that dies mid-send
 * leaves its send counted until its timeout has passed.
 *
 * Why WINDOW_MS is a little over a second: slots WINDOW_MS / rate apart leave each send 100 ms of answer time
 * before the next slot's admission would have to wait for it. The price is a sustained rate of 91% of the limit.
 */
import type { Pool } from '../db.js';

/** The window admission counts in: a second and a margin that leaves each send some answer time (above). */
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
 * Admits one send now if fewer than `perSecond` sends count in the last WINDOW_MS, recording it as counting until
 * `inFlightMs` from now; else says how long until one may be. The endpoint's `recent` holds, per send, the moment it
 * stops counting; those at or before now - WINDOW_MS no longer matter and are dropped on the way.
 */
async function admit(
  pool: Pool,
  endpointId: string,
  perSecond: number,
  inFlightMs: number,
): Promise<{ token: string | null; waitMs: number }> {
  const { rows } = await pool.query<{ token: string | null; wait_ms: number | null }>(
    `WITH admitted AS (
       INSERT INTO opsflow.endpoint_pacing AS p (endpoint_id, next_slot_at, recent)
       VALUES ($1, clock_timestamp(), ARRAY[clock_timestamp() + $4 * interval '1 millisecond'])
       ON CONFLICT (endpoint_id) DO UPDATE
         SET recent = ARRAY(SELECT v FROM unnest(p.recent) v
                            WHERE v > clock_timestamp() - $3 * interval '1 millisecond')
                      || (clock_timestamp() + $4 * interval '1 millisecond')
         WHERE (SELECT count(*) FROM unnest(p.recent) v
                WHERE v > clock_timestamp() - $3 * interval '1 millisecond') < $2
       RETURNING (p.recent[cardinality(p.recent)])::text AS token
     )
     SELECT (SELECT token FROM admitted) AS token,
       (SELECT (extract(epoch FROM
                 (SELECT v FROM unnest(p.recent) v ORDER BY v DESC OFFSET $2 - 1 LIMIT 1)
                 + $3 * interval '1 millisecond' - clock_timestamp()) * 1000)::float8
        FROM opsflow.endpoint_pacing p WHERE p.endpoint_id = $1) AS wait_ms`,
    [endpointId, perSecond, WINDOW_MS, inFlightMs],
  );
  const row = rows[0]!;
  return { token: row.token, waitMs: Math.max(1, row.wait_ms ?? 1) };
}

/**
 * Waits until a send to the endpoint is admitted (and records it as in flight for `inFlightMs`), for at most
 * MAX_INLINE_WAIT_MS: its token, to hand to `sent` once the answer is in; undefined when other senders kept the
 * window full that long (the caller takes a new slot rather than hold its activity slot). `sleep` is the caller's
 * (cancellable).
 */
export async function admitted(
  pool: Pool,
  endpointId: string,
  perSecond: number,
  inFlightMs: number,
  sleep: (ms: number) => Promise<void>,
): Promise<string | undefined> {
  const deadline = Date.now() + MAX_INLINE_WAIT_MS;
  for (;;) {
    const a = await admit(pool, endpointId, perSecond, inFlightMs);
    if (a.token !== null) return a.token;
    if (Date.now() + a.waitMs > deadline) return undefined;
    await sleep(a.waitMs);
  }
}

/** An admitted send's answer is in (or it failed): it counts until now, not until its in-flight bound. */
export async function sent(pool: Pool, endpointId: string, token: string): Promise<void> {
  await pool.query(
    `UPDATE opsflow.endpoint_pacing SET recent = array_replace(recent, $2::timestamptz, clock_timestamp())
     WHERE endpoint_id = $1`,
    [endpointId, token],
  );
}
