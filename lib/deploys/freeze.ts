/**
 * Freeze windows: recurring spans of a target's local time (its `timeZone`, an IANA name) during which deploys are
 * refused — a weekly one (`Fri 16:00` to `Mon 08:00`) or a daily one (`22:00` to `06:00`). Pure: the service asks
 * `activeFreeze(target, now)`, and a deploy during one goes ahead only with an override and an approver.
 *
 * Local time is read with Intl (the runtime's time zone data), so a window follows its zone's daylight-saving
 * changes: Friday 16:00 in Europe/Berlin is 15:00 UTC in winter and 14:00 in summer. A window's end is found by
 * stepping to its local end time and correcting by the zone's offset change in between; an end time that does not
 * exist on the day (inside a spring-forward gap) ends the window up to an hour after the gap.
 */
import { z } from 'zod';
import { zoneFormat } from '../zone-format.js';

export const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
const MINUTES_A_DAY = 24 * 60;
const MINUTES_A_WEEK = 7 * MINUTES_A_DAY;
const WHEN = /^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?([01]\d|2[0-3]):([0-5]\d)$/;

/** True when the runtime knows the IANA time zone. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const freezeWindowSchema = z
  .object({
    name: z.string().min(1).max(100).optional(),
    start: z.string().regex(WHEN, '"Fri 16:00" (weekly) or "22:00" (daily), 24-hour'),
    end: z.string().regex(WHEN, '"Mon 08:00" (weekly) or "06:00" (daily), 24-hour'),
  })
  .strict()
  .refine((w) => (WHEN.exec(w.start)?.[1] === undefined) === (WHEN.exec(w.end)?.[1] === undefined), {
    message: 'start and end both name a day (a weekly window) or neither does (a daily one)',
    path: ['end'],
  })
  .refine((w) => w.start !== w.end, { message: 'a window must not end where it starts', path: ['end'] });

export type FreezeWindow = z.output<typeof freezeWindowSchema>;

export const timeZoneSchema = z
  .string()
  .refine(isTimeZone, { message: 'not an IANA time zone this runtime knows (e.g. Europe/Berlin, UTC)' });

/** A window's place in its period: minutes from Monday 00:00 (weekly) or midnight (daily). */
function minuteOf(when: string): { minute: number; weekly: boolean } {
  const [, day, hh, mm] = WHEN.exec(when)!;
  const inDay = Number(hh) * 60 + Number(mm);
  return day === undefined
    ? { minute: inDay, weekly: false }
    : { minute: DAYS.indexOf(day as (typeof DAYS)[number]) * MINUTES_A_DAY + inDay, weekly: true };
}

/** The instant's local minute of the week (Monday 00:00 = 0) in the zone. */
export function localMinuteOfWeek(at: Date, timeZone: string): number {
  const f = zoneFormat(timeZone, { weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return (
    DAYS.indexOf(parts.weekday as (typeof DAYS)[number]) * MINUTES_A_DAY +
    Number(parts.hour) * 60 +
    Number(parts.minute)
  );
}

const mod = (a: number, n: number) => ((a % n) + n) % n;

/** When the window that holds `at` ends (undefined: `at` is outside it). */
function windowEnd(w: FreezeWindow, at: Date, timeZone: string): Date | undefined {
  const start = minuteOf(w.start);
  const end = minuteOf(w.end).minute;
  const period = start.weekly ? MINUTES_A_WEEK : MINUTES_A_DAY;
  const local = mod(localMinuteOfWeek(at, timeZone), period);
  const length = mod(end - start.minute, period);
  if (mod(local - start.minute, period) >= length) return undefined;
  // The end, first as if the zone kept its offset, then corrected by the offset change between (DST).
  const minuteStart = Math.floor(at.getTime() / 60_000) * 60_000;
  let candidate = minuteStart + mod(end - local, period) * 60_000;
  for (let i = 0; i < 2; i++) {
    const off = mod(end - mod(localMinuteOfWeek(new Date(candidate), timeZone), period), period);
    const signed = off > period / 2 ? off - period : off;
    if (signed === 0) break;
    candidate += signed * 60_000;
  }
  // An end inside a spring-forward gap has no instant: the correction swings by the hour, at worst back to `at`.
  return new Date(Math.max(candidate, minuteStart + 60_000));
}

export interface ActiveFreeze {
  /** The window's name, or its span when it has none. */
  window: string;
  /** `"weekend" (Fri 16:00 – Mon 08:00 Europe/Berlin)`. */
  describe: string;
  until: Date;
}

const spanOf = (w: FreezeWindow, timeZone: string) => `${w.start} – ${w.end} ${timeZone}`;

/**
 * The freeze a deploy at `at` falls in, if any: the window holding it, and when deploys may go again — past every
 * window that holds that moment too (back-to-back or overlapping windows are one freeze).
 */
export function activeFreeze(
  target: { freezeWindows?: FreezeWindow[]; timeZone?: string },
  at: Date,
): ActiveFreeze | undefined {
  const windows = target.freezeWindows ?? [];
  const timeZone = target.timeZone ?? 'UTC';
  let found: { w: FreezeWindow; until: Date } | undefined;
  let moment = at;
  for (let i = 0; i <= windows.length; i++) {
    let next: { w: FreezeWindow; until: Date } | undefined;
    for (const w of windows) {
      const until = windowEnd(w, moment, timeZone);
      if (until && until > moment && (!next || until > next.until)) next = { w, until };
    }
    if (!next) break;
    found = { w: found?.w ?? next.w, until: next.until };
    moment = next.until;
  }
  if (!found) return undefined;
  const span = spanOf(found.w, timeZone);
  return {
    window: found.w.name ?? span,
    describe: found.w.name ? `"${found.w.name}" (${span})` : span,
    until: found.until,
  };
}
