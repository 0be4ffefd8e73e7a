/**
 * `route(scope, config)`: the one place a route says which scope it needs. The same declaration puts the
 * scope in the OpenAPI document (as the bearer scheme's required role and in the description) and attaches
 * the middleware that enforces it, so the two cannot disagree.
 */
import { createRoute, z, type RouteConfig } from '@hono/zod-openapi';
import type { Scope } from '../lib/keys/scopes.js';
import { requireScope } from './auth.js';

export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      requestId: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi('Error');

const error = (description: string) => ({ description, content: { 'application/json': { schema: ErrorEnvelope } } });

export function route<const R extends Omit<RouteConfig, 'security' | 'middleware'>>(scope: Scope, config: R) {
  return createRoute({
    ...config,
    description: `${config.description ? `${config.description}\n\n` : ''}Requires the scope \`${scope}\`.`,
    security: [{ bearerAuth: [scope] }],
    middleware: requireScope(scope),
    responses: {
      ...config.responses,
      401: error('No API key, or an invalid, revoked or expired one'),
      403: error(`The API key lacks the scope ${scope}`),
      429: error('Rate limited; Retry-After says when to try again'),
    },
  });
}
