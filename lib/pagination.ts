/**
 * Keyset pagination on (a timestamp, id): stable under inserts, no OFFSET scans. Each list sorts on its
 * own timestamp (created_at, started_at, expires_at); the cursor is opaque to clients (base64url JSON of
 * the last row's key).
 */
import type { Pool } from './db.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

export interface CursorKey {
  /** The sort timestamp of the last row of the previous page. */
  at: string;
  id: string;
}

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify([key.at, key.id])).toString('base64url');
}

export function decodeCursor(cursor: string): CursorKey | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === 'string' &&
      typeof parsed[1] === 'string' &&
      !Number.isNaN(Date.parse(parsed[0]))
    ) {
      return { at: parsed[0], id: parsed[1] };
    }
  } catch {
    // fall through
  }
  return undefined;
}

/**
 * Takes `limit + 1` rows, returns `limit` and the cursor of the next page if there is one. `sortAt` gives
 * the timestamp the query orders by.
 */
export function page<T extends { id: string }>(rows: T[], limit: number, sortAt: (row: T) => Date) {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  const nextCursor = rows.length > limit && last ? encodeCursor({ at: sortAt(last).toISOString(), id: last.id }) : null;
  return { items, nextCursor };
}

/**
 * One page of a catalog table (backups, restores, deploys), newest first by `started_at` then `id`, with
 * optional equality filters (an undefined value means no filter). Column names come from code, never input.
 */
export async function catalogPage<Row extends { started_at: Date; id: string }>(
  pool: Pool,
  table: string,
  filters: Record<string, string | undefined>,
  query: { after?: CursorKey; limit: number },
): Promise<{ items: Row[]; nextCursor: string | null }> {
  const key = query.after;
  const columns = Object.keys(filters);
  const where = columns.map((col, i) => `($${i + 1}::text IS NULL OR ${col} = $${i + 1})`);
  const n = columns.length;
  const { rows } = await pool.query<Row>(
    `SELECT * FROM ${table} WHERE ${[...where, `($${n + 1}::timestamptz IS NULL OR (started_at, id) < ($${n + 1}, $${n + 2}))`].join(' AND ')}
     ORDER BY started_at DESC, id DESC LIMIT $${n + 3}`,
    [...columns.map((c) => filters[c] ?? null), key?.at ?? null, key?.id ?? null, query.limit + 1],
  );
  return page(rows, query.limit, (r) => r.started_at);
}
