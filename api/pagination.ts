/** Shared pieces of list routes: the query parameters and the cursor, with the API's error on a bad one. */
import { z } from '@hono/zod-openapi';
import { decodeCursor, DEFAULT_LIMIT, MAX_LIMIT, type CursorKey } from '../lib/pagination.js';
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
