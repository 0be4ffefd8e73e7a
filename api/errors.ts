/**
 * One error envelope everywhere: `{ "error": { "code", "message", "requestId", "details"? } }`.
 * Routes throw `ApiError`; `onError`, `notFound` and the validation hook all render through `errorBody`.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ServiceErrorKind } from '../lib/errors.js';

export const ERROR_CODES = [
  'bad_request',
  'malformed_json',
  'validation_failed',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'unprocessable',
  'payload_too_large',
  'rate_limited',
  'internal',
  'unavailable',
  'timeout',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

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

/** The HTTP status of each kind of refusal a family's service makes (lib/errors.ts). */
export const SERVICE_STATUS = {
  not_found: 404,
  conflict: 409,
  unprocessable: 422,
  forbidden: 403,
  payload_too_large: 413,
} as const satisfies Record<ServiceErrorKind, ContentfulStatusCode>;

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

interface Issue {
  path: PropertyKey[];
  message: string;
  code?: string;
  keys?: string[];
}

const PARTS: Record<string, string> = { json: 'body', query: 'query', param: 'path', header: 'header' };

/**
 * The envelope's message for a validation error: the first problem in words people read
 * (`Invalid body: unknown field "ordering"`, `Invalid body: retrySchedule: expected an array`), and how many
 * more there are; `details` keeps the whole list.
 */
export function validationMessage(target: string, issues: ReadonlyArray<Issue>): string {
  const first = issues[0];
  if (!first) return `Invalid ${PARTS[target] ?? target}`;
  const where = first.path.map(String).join('.');
  const what =
    first.code === 'unrecognized_keys' && first.keys
      ? `unknown field${first.keys.length > 1 ? 's' : ''} ${first.keys.map((k) => `"${k}"`).join(', ')}`
      : first.message
          .replace(
            /^Invalid input: expected (\w+), received (\w+)$/,
            (_m, e: string, r: string) => `expected ${/^[aeiou]/.test(e) ? 'an' : 'a'} ${e}, got ${r}`,
          )
          .replace(/^Invalid input: /, '');
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more: see details)` : '';
  return `Invalid ${PARTS[target] ?? target}: ${where ? `${where}: ` : ''}${what}${more}`;
}

/** Zod issues as `{ path, message }`, the `details` of a validation error. */
export function zodDetails(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>) {
  return issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}
