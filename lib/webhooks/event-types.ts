/**
 * What an endpoint subscribes to: exact event types, a prefix (`invoice.*`: every type starting `invoice.`) or
 * everything (`*`). The fan-out (service.ts) matches in SQL with the same rule: EVENT_TYPE_MATCH_SQL.
 */

/** An event type, or a pattern of one: `*`, or a type followed by `.*`. */
export const EVENT_TYPE_PATTERN = /^(\*|[A-Za-z0-9_.:-]+\.\*|[A-Za-z0-9_.:-]+)$/;

/** Whether `pattern` (an exact type, `prefix.*` or `*`) takes events of `type`. */
export function matchesType(pattern: string, type: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

/**
 * SQL: endpoint `ep` takes an event whose type is parameter `$n` — no types listed (all), the type listed, `*`
 * listed, or a `prefix.*` the type starts with (the prefix keeps its dot: `invoice.*` does not take `invoicex.paid`).
 */
export const eventTypeMatchSql = (n: number) =>
  `(ep.event_types IS NULL OR $${n} = ANY (ep.event_types) OR EXISTS (
     SELECT 1 FROM unnest(ep.event_types) p
     WHERE p = '*' OR (right(p, 2) = '.*' AND starts_with($${n}, left(p, -1)))))`;
