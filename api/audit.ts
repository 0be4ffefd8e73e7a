/**
 * The audit trail of the API: every mutating request that reached a route with a key (or a console session)
 * leaves one row in the audit log as it ends — the key, the operation (its operationId), the resource, the
 * outcome and status, whether it came through the API or the console, the request id. Refused and denied
 * requests are recorded too: an attempt is part of who did what. Requests without a valid key (401) are not:
 * there is no actor, and they are in the request log.
 *
 * The row is written after the change, not in its transaction: the routes' services own their transactions, and a
 * row written before them could claim a change that never happened. A row that cannot be written is logged at
 * error level with everything it held (the change itself stands); the answer never waits on it for more than a
 * second, nor at all when it is a 503 (PostgreSQL down: the write would only add its connect timeout).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { recordAudit, type AuditEntry } from '../lib/audit/log.js';
import type { Pool } from '../lib/db.js';
import type { Logger } from '../lib/logger.js';
import { waitAtMost } from '../lib/wait-at-most.js';
import { bearerToken } from './auth.js';
import { clientAddress, parseCidrs } from './rate-limit.js';
import type { AppEnv } from './router.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The longest an answer waits for its audit row (normally a few milliseconds). */
const AUDIT_WAIT_MS = 1000;

/**
 * Route middleware (attached by `route()`): names the operation and, from the path's parameters, the resource it
 * acts on — `/endpoints/{id}/rotate-secret` with id ep_1 → `endpoints/ep_1`; a path without one names its
 * collection (`endpoints`), which the trail completes with the id a create answers.
 */
export function auditAs(operationId: string, pathTemplate: string): MiddlewareHandler<AppEnv> {
  const segments = pathTemplate.split('/').filter(Boolean);
  const lastParam = segments.findLastIndex((s) => s.startsWith('{'));
  return async (c, next) => {
    const params = c.req.param() as Record<string, string>;
    const kept = lastParam >= 0 ? segments.slice(0, lastParam + 1) : segments.slice(0, 1);
    const resource = kept.map((s) => (s.startsWith('{') ? (params[s.slice(1, -1)] ?? s) : s.split(':')[0])).join('/');
    c.set('audit', { action: operationId, resource });
    await next();
  };
}

/** What the answer adds to the row: the id a create made, the error code of a refusal. */
async function fromAnswer(c: Context): Promise<{ id?: string; error?: string }> {
  if (!c.res.headers.get('content-type')?.includes('application/json')) return {};
  try {
    const body = (await c.res.clone().json()) as { id?: unknown; error?: { code?: unknown } };
    return {
      id: typeof body.id === 'string' ? body.id : undefined,
      error: typeof body.error?.code === 'string' ? body.error.code : undefined,
    };
  } catch {
    return {};
  }
}

/** The error code of a refusal, or the id a request on an existing resource made (a restore of a backup). */
function detailOf(
  answer: { id?: string; error?: string },
  resource: string | undefined | null,
): Record<string, string> | undefined {
  if (answer.error) return { error: answer.error };
  if (resource && answer.id && answer.id !== resource.split('/').pop()) return { made: answer.id };
  return undefined;
}

/**
 * Writes a request's audit row — its request id and client address filled in — and logs, rather than throws, a
 * row that cannot be written. Shared by the trail below and the console's login and logout.
 */
export function auditWriter(deps: { pool: Pool; log: Logger; trustedProxies: string[] }) {
  const trusted = parseCidrs(deps.trustedProxies);
  return (c: Context<AppEnv>, e: Omit<AuditEntry, 'requestId' | 'address'>): Promise<void> => {
    const entry: AuditEntry = { ...e, requestId: c.get('requestId'), address: clientAddress(c, trusted) };
    return recordAudit(deps.pool, entry).then(
      () => undefined,
      (err: unknown) => {
        deps.log.error({ err, audit: entry }, 'audit row not written');
      },
    );
  };
}

export function auditTrail(deps: { pool: Pool; log: Logger; trustedProxies: string[] }): MiddlewareHandler<AppEnv> {
  const write = auditWriter(deps);
  return async (c, next) => {
    await next();
    if (SAFE_METHODS.has(c.req.method)) return;
    const audit = c.get('audit');
    const principal = c.get('principal');
    if (!audit || !principal) return;
    const answer = await fromAnswer(c);
    const collection = !audit.resource?.includes('/');
    const written = write(c, {
      actor: { keyId: principal.keyId, keyName: principal.keyName, tenantId: principal.tenantId },
      action: audit.action,
      resource: collection && answer.id && c.res.status < 300 ? `${audit.resource}/${answer.id}` : audit.resource,
      status: c.res.status,
      via: bearerToken(c) ? 'api' : 'console',
      detail: detailOf(answer, collection ? undefined : audit.resource),
    });
    // A dependency that is down (503) must not hold the answer longer: the row is written (or its failure logged)
    // behind it. Otherwise the answer waits for the row, a second at most, so that who did what is on record when
    // the caller learns the outcome.
    if (c.res.status === 503) return;
    await waitAtMost(written, AUDIT_WAIT_MS);
  };
}
