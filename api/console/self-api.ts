/** The API's own answer to a GET, asked as the page's session (its key's scopes and tenant apply). */
import type { Context, Hono } from 'hono';
import { ApiError, type ErrorCode } from '../errors.js';
import type { AppEnv } from '../router.js';

export async function selfApi<T>(app: Hono<AppEnv>, c: Context, p: string): Promise<T> {
  const res = await app.request(p, { headers: { cookie: c.req.header('cookie') ?? '' } }, c.env);
  const body = (await res.json()) as T & { error?: { code: ErrorCode; message: string } };
  if (!res.ok) throw new ApiError(res.status as 403, body.error?.code ?? 'internal', body.error?.message ?? p);
  return body;
}
