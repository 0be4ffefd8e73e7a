/** What the webhook resources share: path and query schemas, and the service's errors as API errors. */
import { z } from '@hono/zod-openapi';
import { WebhookError } from '../../../lib/webhooks/service.js';
import { ApiError } from '../../errors.js';

export const EventType = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');

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
