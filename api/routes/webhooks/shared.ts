/** What the webhook resources share: path and query schemas, and the service's errors as API errors. */
import { z } from '@hono/zod-openapi';
import { parseDuration } from '../../../lib/durations.js';
import { WebhookError } from '../../../lib/webhooks/service.js';
import { DEFAULT_RETRY_SCHEDULE } from '../../../lib/webhooks/contract.js';
import { ApiError } from '../../errors.js';

export const EventType = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');

/** Waits before each attempt, as durations ("0s", "30s", "5m"); parsed to milliseconds. */
export const RetrySchedule = z
  .array(z.string())
  .min(1)
  .max(20)
  .transform((steps, ctx) => {
    const parsed = steps.map((s) => parseDuration(s));
    parsed.forEach((ms, i) => {
      if (ms === undefined) ctx.addIssue({ code: 'custom', path: [i], message: `"${steps[i]}" is not a duration` });
      else if (ms > 7 * 24 * 3600 * 1000) ctx.addIssue({ code: 'custom', path: [i], message: 'at most 7d' });
    });
    return parsed as number[];
  })
  .openapi({ type: 'array', items: { type: 'string' }, example: [...DEFAULT_RETRY_SCHEDULE] });

export const IdParam = z.object({ id: z.string().min(1).max(100) });
export const DateParam = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

export function serviceError(err: unknown): never {
  if (err instanceof WebhookError) {
    if (err.code === 'not_found') throw new ApiError(404, 'not_found', err.message);
    if (err.code === 'conflict') throw new ApiError(409, 'conflict', err.message);
    throw new ApiError(413, 'payload_too_large', err.message);
  }
  throw err;
}
