/** Shared pieces of list routes: the query parameters and the cursor, with the API's error on a bad one. */
import { z } from '@hono/zod-openapi';
import type { Pool } from '../lib/db.js';
import { decodeCursor, DEFAULT_LIMIT, MAX_LIMIT, page, type CursorKey } from '../lib/pagination.js';
import { ApiError } from './errors.js';

export const Limit = z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT);
export const Cursor = z.string().max(500).optional();

/** The decoded cursor, undefined for the first page; a cursor that does not decode is a 400. */
export function cursorKey(cursor: string | undefined): CursorKey | undefined {
  if (cursor === undefined) return undefined;
  const key = decodeCursor(cursor);
  if (!key) throw new ApiError(400, 'validation_failed', 'Invalid cursor');
  return key;
}

export const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });
export const security = [{ bearerAuth: [] }];

/** The 200 response of a list route: a page of `item` and the cursor of the next one. */
export function pageResponse(item: z.ZodType, description = 'A page, and the cursor of the next one') {
  return { 200: { description, ...json(z.object({ items: z.array(item), nextCursor: z.string().nullable() })) } };
}

/**
 * One page of a catalog table (backups, restores, deploys), newest first by `started_at` then `id`, with
 * optional equality filters (an undefined value means no filter). Column names come from code, never input.
 */
export async function catalogPage<Row extends { started_at: Date; id: string }>(
  pool: Pool,
  table: string,
  filters: Record<string, string | undefined>,
  query: { cursor?: string; limit: number },
): Promise<{ items: Row[]; nextCursor: string | null }> {
  const key = cursorKey(query.cursor);
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
