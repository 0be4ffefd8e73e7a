/**
 * One error envelope everywhere: `{ "error": { "code", "message", "requestId", "details"? } }`.
 * Routes throw `ApiError`; `onError`, `notFound` and the validation hook all render through `errorBody`.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export type ErrorCode =
  | 'bad_request'
  | 'malformed_json'
  | 'validation_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'unprocessable'
  | 'payload_too_large'
  | 'rate_limited'
  | 'internal'
  | 'unavailable'
  | 'timeout';

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorEnvelope {
  error: { code: ErrorCode; message: string; requestId: string; details?: unknown };
}

export function errorBody(c: Context, code: ErrorCode, message: string, details?: unknown): ErrorEnvelope {
  const requestId = (c.get('requestId') as string | undefined) ?? 'unknown';
  return { error: { code, message, requestId, ...(details === undefined ? {} : { details }) } };
}

export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  code: ErrorCode,
  message: string,
  details?: unknown,
) {
  return c.json(errorBody(c, code, message, details), status);
}

/** Zod issues as `{ path, message }`, the `details` of a validation error. */
export function zodDetails(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>) {
  return issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}
