/**
 * The audit log: one row per mutating API request and per console login or logout (db/migrations/019). A request's
 * row is written ahead, 'pending', before its route changes anything, and completed with its outcome as it ends
 * (api/audit.ts, db/migrations/031); a login's is written once. Read newest first in keyset pages, pruned after
 * AUDIT_RETENTION (lib/system-check/retention.ts). Every statement on `opsflow.audit_log` is here.
 */
import type { Queryable } from '../db.js';
import { newId } from '../ids.js';
import { page, type CursorKey } from '../pagination.js';

/** `pending`: written ahead and not (yet) completed — a row that stays so names a request whose process died. */
export const AUDIT_OUTCOMES = ['pending', 'succeeded', 'refused', 'denied', 'failed'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

export interface AuditEntry {
  actor: { keyId: string; keyName: string; tenantId?: string | null } | null;
  action: string;
  resource: string | null;
  status: number;
  via: 'api' | 'console' | 'portal';
  requestId: string;
  address: string | null;
  detail?: Record<string, string>;
}

export interface AuditRecord {
  id: string;
  at: string;
  actor: { keyId: string; keyName: string; tenantId: string | null } | null;
  action: string;
  resource: string | null;
  outcome: AuditOutcome;
  /** Null while pending. */
  status: number | null;
  via: 'api' | 'console' | 'portal';
  requestId: string;
  address: string | null;
  detail: Record<string, string> | null;
}

interface AuditRow {
  id: string;
  at: Date;
  actor_key_id: string | null;
  actor_name: string | null;
  tenant_id: string | null;
  action: string;
  resource: string | null;
  outcome: AuditOutcome;
  status: number | null;
  via: 'api' | 'console' | 'portal';
  request_id: string;
  address: string | null;
  detail: Record<string, string> | null;
}

/** How a request ended, from its status: refused (4xx but 401/403), denied (401, 403), failed (5xx). */
export function outcomeOf(status: number): AuditOutcome {
  if (status >= 500) return 'failed';
  if (status === 401 || status === 403) return 'denied';
  if (status >= 400) return 'refused';
  return 'succeeded';
}

const INSERT = `INSERT INTO opsflow.audit_log
  (id, actor_key_id, actor_name, tenant_id, action, resource, outcome, status, via, request_id, address, detail)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`;

const insertValues = (id: string, e: Omit<AuditEntry, 'status'>, status: number | null) => [
  id,
  e.actor?.keyId ?? null,
  e.actor?.keyName ?? null,
  e.actor?.tenantId ?? null,
  e.action,
  e.resource,
  status === null ? 'pending' : outcomeOf(status),
  status,
  e.via,
  e.requestId,
  e.address,
  e.detail ?? null,
];

/** One finished row (a console login or logout). */
export async function recordAudit(db: Queryable, e: AuditEntry): Promise<string> {
  const id = newId('aud');
  await db.query(INSERT, insertValues(id, e, e.status));
  return id;
}

/** A request's row, written before it changes anything: pending, no status. */
export async function beginAudit(db: Queryable, e: Omit<AuditEntry, 'status'>): Promise<string> {
  const id = newId('aud');
  await db.query(INSERT, insertValues(id, e, null));
  return id;
}

/** Completes a pending row with how its request ended (a create names the id it made in `resource`). */
export async function endAudit(
  db: Queryable,
  id: string,
  end: { status: number; resource: string | null; detail?: Record<string, string> },
): Promise<void> {
  await db.query(
    `UPDATE opsflow.audit_log SET outcome = $2, status = $3, resource = $4, detail = $5
     WHERE id = $1 AND outcome = 'pending'`,
    [id, outcomeOf(end.status), end.status, end.resource, end.detail ?? null],
  );
}

export interface AuditFilters {
  actor?: string;
  /** The acting key's tenant. */
  tenant?: string;
  action?: string;
  /** A resource, or a prefix of one ending in `*` (`endpoints/*`). */
  resource?: string;
  outcome?: AuditOutcome;
  since?: Date;
  until?: Date;
}

const recordOf = (r: AuditRow): AuditRecord => ({
  id: r.id,
  at: r.at.toISOString(),
  actor: r.actor_key_id ? { keyId: r.actor_key_id, keyName: r.actor_name ?? '', tenantId: r.tenant_id } : null,
  action: r.action,
  resource: r.resource,
  outcome: r.outcome,
  status: r.status,
  via: r.via,
  requestId: r.request_id,
  address: r.address,
  detail: r.detail,
});

/** Newest first, filtered; keyset pages on (at, id). */
export async function auditPage(
  db: Queryable,
  f: AuditFilters,
  q: { cursor?: CursorKey; limit: number },
): Promise<{ items: AuditRecord[]; nextCursor: string | null }> {
  const prefix = f.resource?.endsWith('*') ? f.resource.slice(0, -1) : undefined;
  const { rows } = await db.query<AuditRow>(
    `SELECT * FROM opsflow.audit_log
     WHERE ($1::text IS NULL OR actor_key_id = $1)
       AND ($2::text IS NULL OR action = $2)
       AND ($3::text IS NULL OR resource = $3)
       AND ($4::text IS NULL OR resource LIKE replace(replace(replace($4, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%')
       AND ($5::text IS NULL OR outcome = $5)
       AND ($6::timestamptz IS NULL OR at >= $6)
       AND ($7::timestamptz IS NULL OR at < $7)
       AND ($8::timestamptz IS NULL OR (at, id) < ($8, $9))
       AND ($11::text IS NULL OR tenant_id = $11)
     ORDER BY at DESC, id DESC LIMIT $10`,
    [
      f.actor ?? null,
      f.action ?? null,
      prefix === undefined ? (f.resource ?? null) : null,
      prefix ?? null,
      f.outcome ?? null,
      f.since ?? null,
      f.until ?? null,
      q.cursor?.at ?? null,
      q.cursor?.id ?? null,
      q.limit + 1,
      f.tenant ?? null,
    ],
  );
  const { items, nextCursor } = page(rows, q.limit, (r) => r.at);
  return { items: items.map(recordOf), nextCursor };
}
