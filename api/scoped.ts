/**
 * `route(scope, config)`: the one place a route says which scope it needs. The same declaration puts the
 * scope in the OpenAPI document (as the bearer scheme's required role and in the description), attaches the
 * middleware that enforces it, tags the operation with its family, and documents the error answers every
 * route can give — so the document, the checks and the answers cannot disagree.
 */
import { createRoute, z, type RouteConfig } from '@hono/zod-openapi';
import type { Scope } from '../lib/keys/scopes.js';
import { auditAs } from './audit.js';
import { requireScope } from './auth.js';
import { ERROR_CODES } from './errors.js';

export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string().openapi({ description: 'The first problem, for people' }),
      requestId: z.string(),
      details: z.unknown().optional().openapi({ description: 'Every problem (validation), or context' }),
    }),
  })
  .openapi('Error');

const error = (description: string) => ({ description, content: { 'application/json': { schema: ErrorEnvelope } } });

/** The OpenAPI tag of each family, by the first segment of the path. */
export const TAGS = {
  webhooks: 'Endpoints, events and their catalogue, deliveries, dead letters and recovers',
  subscriptions: 'Subscription lifecycles and reminders',
  backups: 'Backups, restores and drills',
  deploys: 'Deploys, approvals and rollbacks',
  schedules: 'The schedules opsflow declares, and their runs',
  system: 'Status and system checks',
  keys: 'Scoped API keys',
  audit: 'The audit log: who did what',
} as const;
const tagOf: Record<string, keyof typeof TAGS> = {
  endpoints: 'webhooks',
  events: 'webhooks',
  deliveries: 'webhooks',
  'dead-letters': 'webhooks',
  recovers: 'webhooks',
  'event-types': 'webhooks',
  subscriptions: 'subscriptions',
  backups: 'backups',
  restores: 'backups',
  deploys: 'deploys',
  'deploy-targets': 'deploys',
  schedules: 'schedules',
  'system-check': 'system',
  status: 'system',
  'api-keys': 'keys',
  tenants: 'keys',
  audit: 'audit',
};

/** The families a tenant key reaches (its tenant's part of them); every other route refuses it (403). */
export const TENANT_FAMILIES: ReadonlySet<keyof typeof TAGS> = new Set(['webhooks', 'subscriptions']);

export function route<const R extends Omit<RouteConfig, 'security' | 'middleware' | 'tags'> & { operationId: string }>(
  scope: Scope,
  config: R,
) {
  // `/subscriptions:batch` belongs to `subscriptions` (a custom method, AIP-136 style).
  const tag = tagOf[config.path.split('/')[1]?.split(':')[0] ?? ''];
  if (!tag) throw new Error(`route ${config.path}: no family tag for its first path segment`);
  return createRoute({
    ...config,
    tags: [tag],
    description: `${config.description ? `${config.description}\n\n` : ''}Requires the scope \`${scope}\`.`,
    security: [{ bearerAuth: [scope] }],
    middleware: [auditAs(config.operationId, config.path), requireScope(scope, TENANT_FAMILIES.has(tag))],
    responses: {
      ...config.responses,
      400: error('The request is malformed or fails validation (`malformed_json`, `validation_failed`)'),
      401: error('No API key, or an invalid, revoked or expired one (`unauthorized`)'),
      403: error(`The API key lacks the scope ${scope} (\`forbidden\`)`),
      429: error('Rate limited (`rate_limited`); Retry-After says when to try again'),
      500: error('An unexpected error (`internal`); the request id finds it in the logs'),
    },
  });
}
