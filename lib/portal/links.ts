/**
 * Tenant portal links. An operator asks for a link for one tenant; the link carries a one-time random code and
 * stands for a key of that tenant made with it (the operator's key as its maker, so revoking the operator's key
 * ends the portal too), holding only the portal's scopes and expiring with the link. Opening the link uses the
 * code once and makes a session for that key, as a console login does: from there on the portal calls the same
 * API, and the tenant key's rules — only its tenant's endpoints, deliveries, dead letters, recovers and
 * catalogue; every operator route refused — are what keeps one tenant out of another's.
 */
import { randomBytes } from 'node:crypto';
import type { Pool } from '../db.js';
import { ServiceError } from '../errors.js';
import { actorLabel, type Scope } from '../keys/scopes.js';
import { digest, type KeyStore, type Principal } from '../keys/store.js';

/** What a portal may do: read its tenant's webhooks, change its endpoints, recover and retry its deliveries. */
export const PORTAL_SCOPES = ['read', 'endpoints:write', 'deliveries:redrive'] as const satisfies readonly Scope[];
export type PortalScope = (typeof PORTAL_SCOPES)[number];
/** Scopes the link's maker must hold: a portal without them could show or change nothing. */
export const PORTAL_REQUIRED: readonly Scope[] = ['read', 'endpoints:write'];

export const PORTAL_LINK_DEFAULT_SEC = 24 * 3600;
export const PORTAL_LINK_MIN_SEC = 60;
export const PORTAL_LINK_MAX_SEC = 7 * 24 * 3600;

export interface PortalLink {
  /** The one-time code; in this answer only (PostgreSQL keeps its SHA-256). */
  code: string;
  tenantId: string;
  keyId: string;
  scopes: PortalScope[];
  expiresAt: Date;
}

export class PortalError extends ServiceError {}

/** A link for a tenant, made by a global key holding the portal's required scopes. */
export async function createPortalLink(
  deps: { pool: Pool; keyStore: KeyStore },
  input: { tenantId: string; by: Principal; expiresInSec?: number },
): Promise<PortalLink> {
  const { by, tenantId } = input;
  if (by.tenantId) {
    throw new PortalError(
      'forbidden',
      `This API key is tenant ${by.tenantId}'s: only an operator's key makes portal links`,
    );
  }
  const lacking = PORTAL_REQUIRED.filter((s) => !by.scopes.has(s));
  if (lacking.length > 0) {
    throw new PortalError(
      'forbidden',
      `A portal link needs a key holding ${PORTAL_REQUIRED.join(' and ')}: this one lacks ${lacking.join(', ')}`,
    );
  }
  const seconds = input.expiresInSec ?? PORTAL_LINK_DEFAULT_SEC;
  let expiresAt = new Date(Date.now() + seconds * 1000);
  // A maker that expires sooner gives the link its own expiry: a link never outlives the key that made it.
  if (by.expiresAt && by.expiresAt < expiresAt) expiresAt = by.expiresAt;
  const scopes: PortalScope[] = PORTAL_SCOPES.filter((s) => by.scopes.has(s));
  const { record } = await deps.keyStore.create({ name: `portal:${tenantId}`, scopes, expiresAt, tenantId, by });
  const code = randomBytes(32).toString('base64url');
  await deps.pool.query(
    `INSERT INTO opsflow.portal_links (code_hash, key_id, tenant_id, created_by, expires_at) VALUES ($1, $2, $3, $4, $5)`,
    [digest(code), record.id, tenantId, actorLabel(by), expiresAt],
  );
  return { code, tenantId, keyId: record.id, scopes, expiresAt };
}

export type Redeemed = { keyId: string; tenantId: string } | { refused: 'unknown' | 'used' | 'expired' };

/**
 * What a link's code stands for, without using it: the page a GET shows (mail scanners and link previews fetch
 * links, and must not spend a one-time one).
 */
export async function peekPortalLink(pool: Pool, code: string): Promise<Redeemed> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(code)) return { refused: 'unknown' };
  const { rows } = await pool.query<{ key_id: string; tenant_id: string; used_at: Date | null; live: boolean }>(
    `SELECT key_id, tenant_id, used_at, expires_at > now() AS live FROM opsflow.portal_links WHERE code_hash = $1`,
    [digest(code)],
  );
  const r = rows[0];
  if (!r) return { refused: 'unknown' };
  if (r.used_at) return { refused: 'used' };
  if (!r.live) return { refused: 'expired' };
  return { keyId: r.key_id, tenantId: r.tenant_id };
}

/**
 * Uses a link's code: the first open within its life gets the key to make a session for; a second open, a
 * late one or an unknown code is refused (and which, so the page can say what to ask for).
 */
export async function redeemPortalLink(pool: Pool, code: string): Promise<Redeemed> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(code)) return { refused: 'unknown' };
  const used = await pool.query<{ key_id: string; tenant_id: string }>(
    `UPDATE opsflow.portal_links SET used_at = now()
     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
     RETURNING key_id, tenant_id`,
    [digest(code)],
  );
  const r = used.rows[0];
  if (r) return { keyId: r.key_id, tenantId: r.tenant_id };
  const { rows } = await pool.query<{ used_at: Date | null }>(
    'SELECT used_at FROM opsflow.portal_links WHERE code_hash = $1',
    [digest(code)],
  );
  if (!rows[0]) return { refused: 'unknown' };
  return { refused: rows[0].used_at ? 'used' : 'expired' };
}

/** Links past their life are of no use: removed when a new one is made, as sessions are. */
export async function forgetExpiredLinks(pool: Pool): Promise<void> {
  await pool.query(`DELETE FROM opsflow.portal_links WHERE expires_at < now() - interval '1 day'`);
}
