/**
 * The audit trail of the API: every mutating request that reached a route with a key (or a console session)
 * leaves one row in the audit log — the key, the operation (its operationId), the resource, the outcome and
 * status, whether it came through the API or the console, the request id. Refused and denied requests are
 * recorded too: an attempt is part of who did what. Requests without a valid key (401) are not: there is no
 * actor, and they are in the request log.
 *
 * The row is written ahead: when the request reaches its route, before anything is checked or changed, it goes in
 * as `pending`; as the request ends it takes its outcome, status and (for a create) the id made. A row that cannot
 * be written ahead refuses the request (503, nothing changed): no change without a row naming who asked. That
 * holds for the changes no PostgreSQL transaction could hold with the row — a schedule paused, a deploy or backup
 * started, a workflow cancelled in Temporal — as much as for rows in opsflow's tables; a row left pending names a
 * request whose API process died before it answered. The completing write, if it fails, is logged at error level
 * with what it held (the row stays pending); the answer waits for it a second at most, and not at all on a 503.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { beginAudit, endAudit, recordAudit, type AuditEntry } from '../lib/audit/log.js';
import { isPostgresUnavailable, type Pool } from '../lib/db.js';
import type { Logger } from '../lib/logger.js';
import { waitAtMost } from '../lib/wait-at-most.js';
import { bearerToken } from './auth.js';
import { errorResponse } from './errors.js';
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
    const begin = c.get('auditBegin');
    if (begin && !(await begin())) {
      c.header('Retry-After', '5');
      return errorResponse(
        c,
        503,
        'unavailable',
        'the audit log could not be written (PostgreSQL did not answer), so nothing was changed; try again',
      );
    }
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
  const trusted = parseCidrs(deps.trustedProxies);
  const actorOf = (c: Context<AppEnv>) => {
    const principal = c.get('principal');
    return principal && { keyId: principal.keyId, keyName: principal.keyName, tenantId: principal.tenantId };
  };
  return async (c, next) => {
    if (SAFE_METHODS.has(c.req.method)) return next();
    // Called by the route's auditAs once it knows the operation: true when the row is in (or there is no actor).
    c.set('auditBegin', async () => {
      const audit = c.get('audit');
      const actor = actorOf(c);
      if (!audit || !actor) return true;
      try {
        const id = await beginAudit(deps.pool, {
          actor,
          action: audit.action,
          resource: audit.resource,
          // A session of a tenant key is a portal's (the console takes operators' keys only).
          via: bearerToken(c) ? 'api' : actor.tenantId ? 'portal' : 'console',
          requestId: c.get('requestId'),
          address: clientAddress(c, trusted),
        });
        c.set('auditRow', id);
        return true;
      } catch (err) {
        deps.log.error({ err, action: audit.action, actor }, 'audit row not written ahead: request refused');
        // PostgreSQL unreachable: the API's usual 503 for it (with Retry-After); anything else, the audit's own.
        if (isPostgresUnavailable(err)) throw err;
        return false;
      }
    });
    await next();
    const id = c.get('auditRow');
    const audit = c.get('audit');
    if (!id || !audit) return;
    const answer = await fromAnswer(c);
    const collection = !audit.resource?.includes('/');
    const end = {
      status: c.res.status,
      resource: collection && answer.id && c.res.status < 300 ? `${audit.resource}/${answer.id}` : audit.resource,
      detail: detailOf(answer, collection ? undefined : audit.resource),
    };
    const written = endAudit(deps.pool, id, end).catch((err: unknown) => {
      deps.log.error(
        { err, audit: { id, action: audit.action, actor: actorOf(c), ...end } },
        'audit row not completed',
      );
    });
    // A dependency that is down (503) must not hold the answer longer: the row is completed (or its failure logged)
    // behind it. Otherwise the answer waits for it, a second at most, so that how it ended is on record when the
    // caller learns it.
    if (c.res.status === 503) return;
    await waitAtMost(written, AUDIT_WAIT_MS);
  };
}
