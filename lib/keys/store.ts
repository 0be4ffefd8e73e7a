/**
 * API keys: the bootstrap keys from OPSFLOW_API_KEYS (admin, named env-1, env-2, … in memory only) and
 * the keys made through the API, stored as SHA-256 digests with their scopes. A key is high-entropy random
 * data, so one unsalted digest is enough to make the table useless to whoever reads it (as in unkey and
 * GitHub's tokens); lookups are by digest, so no key is ever compared in variable time.
 *
 * Each process remembers a lookup for `cacheMs` (2 s): a revoked key stops working in every API process
 * within that time plus a request, without a database round trip on every call.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Pool } from '../db.js';
import { newId } from '../ids.js';
import { page, type CursorKey } from '../pagination.js';
import { actorLabel, PRESETS, type Actor, type Scope } from './scopes.js';
import { ServiceError } from '../errors.js';

export interface Principal extends Actor {
  scopes: ReadonlySet<Scope>;
  /** A tenant key's tenant: it reaches only that tenant's webhooks and subscriptions. null: a global key. */
  tenantId: string | null;
  source: 'env' | 'db';
  expiresAt: Date | null;
}

export interface ApiKeyRecord {
  id: string;
  name: string;
  scopes: Scope[];
  /** The tenant it is limited to (null: global). */
  tenantId: string | null;
  prefix: string;
  createdAt: string;
  createdBy: string;
  /** The id of the key that made it (null for keys made before makers were recorded). */
  createdByKey: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
}

interface KeyRow {
  id: string;
  name: string;
  scopes: Scope[];
  tenant_id: string | null;
  prefix: string;
  created_at: Date;
  created_by: string;
  created_by_key: string | null;
  expires_at: Date | null;
  revoked_at: Date | null;
  revoked_by: string | null;
}

const COLUMNS =
  'id, name, scopes, tenant_id, prefix, created_at, created_by, created_by_key, expires_at, revoked_at, revoked_by';

const recordJson = (r: KeyRow): ApiKeyRecord => ({
  id: r.id,
  name: r.name,
  scopes: r.scopes,
  tenantId: r.tenant_id,
  prefix: r.prefix,
  createdAt: r.created_at.toISOString(),
  createdBy: r.created_by,
  createdByKey: r.created_by_key,
  expiresAt: r.expires_at?.toISOString() ?? null,
  revokedAt: r.revoked_at?.toISOString() ?? null,
  revokedBy: r.revoked_by,
});

/** What a stored key stands for when it acts. */
const principalOf = (r: KeyRow): Principal => ({
  keyId: r.id,
  keyName: r.name,
  scopes: new Set(r.scopes),
  tenantId: r.tenant_id,
  source: 'db',
  expiresAt: r.expires_at,
});

export const digest = (key: string) => createHash('sha256').update(key).digest();

/** A short, stable, non-secret id for a bootstrap key: a digest prefix (what the logs have always shown). */
export const envKeyId = (key: string) => `env_${digest(key).toString('hex').slice(0, 12)}`;

/** A refusal of the key store; the API renders it as its error envelope (lib/errors.ts). */
export class KeyError extends ServiceError {
  constructor(code: 'not_found' | 'conflict' | 'forbidden' | 'unprocessable', message: string, details?: unknown) {
    super(code, message, details);
  }
}

export type KeyStore = ReturnType<typeof createKeyStore>;

export function createKeyStore(opts: { pool: Pool; envKeys: string[]; cacheMs?: number; now?: () => number }) {
  const { pool } = opts;
  const cacheMs = opts.cacheMs ?? 2000;
  const now = opts.now ?? (() => Date.now());
  const env = opts.envKeys.map((key, i) => ({
    d: digest(key),
    principal: {
      keyId: envKeyId(key),
      keyName: `env-${i + 1}`,
      scopes: new Set<Scope>(PRESETS.admin),
      tenantId: null,
      source: 'env',
      expiresAt: null,
    } satisfies Principal,
  }));
  const cache = new Map<string, { principal: Principal | undefined; at: number }>();

  async function lookup(d: Buffer): Promise<Principal | undefined> {
    const hex = d.toString('hex');
    const hit = cache.get(hex);
    if (hit && now() - hit.at < cacheMs) return hit.principal;
    const { rows } = await pool.query<KeyRow>(
      `SELECT ${COLUMNS} FROM opsflow.api_keys WHERE hash = $1 AND revoked_at IS NULL`,
      [d],
    );
    const principal = rows[0] && principalOf(rows[0]);
    // Bounded: unknown keys are cached too (a flood of wrong keys costs one query per key per window),
    // and the whole map is dropped when it grows past what honest traffic needs.
    if (cache.size > 10_000) cache.clear();
    cache.set(hex, { principal, at: now() });
    return principal;
  }

  async function get(id: string): Promise<ApiKeyRecord> {
    const { rows } = await pool.query<KeyRow>(`SELECT ${COLUMNS} FROM opsflow.api_keys WHERE id = $1`, [id]);
    if (!rows[0]) throw new KeyError('not_found', `API key ${id} not found`);
    return recordJson(rows[0]);
  }

  return {
    get,

    /**
     * The principal of a key by its id — what a console session acts as — or undefined when the key is unknown,
     * revoked or expired. Checked on every console request, so revoking a key ends its sessions.
     */
    async principalById(id: string): Promise<Principal | undefined> {
      const fromEnv = env.find((k) => k.principal.keyId === id);
      if (fromEnv) return fromEnv.principal;
      const { rows } = await pool.query<KeyRow>(
        `SELECT ${COLUMNS} FROM opsflow.api_keys WHERE id = $1 AND revoked_at IS NULL`,
        [id],
      );
      const r = rows[0];
      if (!r || (r.expires_at && r.expires_at.getTime() <= now())) return undefined;
      return principalOf(r);
    },

    /** The principal a presented key stands for, or undefined (unknown, revoked or expired). */
    async authenticate(key: string): Promise<Principal | undefined> {
      const d = digest(key);
      let found: Principal | undefined;
      for (const k of env) {
        // No early exit: the time taken does not depend on which bootstrap key matched.
        if (timingSafeEqual(d, k.d)) found = k.principal;
      }
      found ??= await lookup(d);
      if (found?.expiresAt && found.expiresAt.getTime() <= now()) return undefined;
      return found;
    },

    /**
     * Makes a key. The key is in the answer and nowhere else: only its digest is stored. A key never holds more
     * than its maker: no scope the maker lacks, and no life past the maker's own expiry (a maker that expires
     * gives its expiry to a key asked for without one). Its maker is recorded, so revoking the maker revokes it.
     */
    async create(input: {
      name: string;
      scopes: Scope[];
      expiresAt?: Date;
      /** Only a global key sets it; a tenant key's keys are its tenant's. */
      tenantId?: string;
      by: Principal;
    }): Promise<{ record: ApiKeyRecord; key: string }> {
      if (input.by.tenantId && input.tenantId !== undefined && input.tenantId !== input.by.tenantId) {
        throw new KeyError('forbidden', `a key of tenant ${input.by.tenantId} makes keys of that tenant only`);
      }
      const tenantId = input.by.tenantId ?? input.tenantId ?? null;
      const beyond = input.scopes.filter((s) => !input.by.scopes.has(s));
      if (beyond.length > 0) {
        throw new KeyError('forbidden', `a key cannot grant scopes it does not hold: ${beyond.join(', ')}`);
      }
      const makerExpiry = input.by.expiresAt;
      if (makerExpiry && input.expiresAt && input.expiresAt > makerExpiry) {
        throw new KeyError(
          'unprocessable',
          `a key cannot outlive the key that makes it: expiresAt must be at most ${makerExpiry.toISOString()}`,
          [{ path: 'expiresAt', message: `after the maker's expiry ${makerExpiry.toISOString()}` }],
        );
      }
      const key = `opsk_${randomBytes(32).toString('base64url')}`;
      const { rows } = await pool.query<KeyRow>(
        `INSERT INTO opsflow.api_keys (id, name, scopes, hash, prefix, created_by, created_by_key, expires_at, tenant_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
        [
          newId('key'),
          input.name,
          input.scopes,
          digest(key),
          key.slice(0, 12),
          actorLabel(input.by),
          input.by.keyId,
          input.expiresAt ?? makerExpiry ?? null,
          tenantId,
        ],
      );
      return { record: recordJson(rows[0]!), key };
    },

    /** Keys made through the API, newest first; the bootstrap keys are listed first on the first page. */
    async list(q: { cursor?: CursorKey; limit: number; includeRevoked: boolean }) {
      const { rows } = await pool.query<KeyRow>(
        `SELECT ${COLUMNS} FROM opsflow.api_keys
         WHERE ($1 OR revoked_at IS NULL) AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4`,
        [q.includeRevoked, q.cursor?.at ?? null, q.cursor?.id ?? null, q.limit + 1],
      );
      const { items, nextCursor } = page(rows, q.limit, (r) => r.created_at);
      const bootstrap = q.cursor
        ? []
        : env.map(({ principal: p }) => ({ id: p.keyId, name: p.keyName, scopes: [...p.scopes], source: 'env' }));
      return { bootstrap, items: items.map(recordJson), nextCursor };
    },

    /**
     * Revokes a key and every key it minted, and theirs, in one statement; every API process refuses them within
     * `cacheMs`. A key revokes only keys whose scopes it holds all of. Revoking twice is a conflict.
     */
    async revoke(id: string, by: Principal): Promise<ApiKeyRecord & { alsoRevoked: ApiKeyRecord[] }> {
      if (env.some((k) => k.principal.keyId === id)) {
        throw new KeyError('conflict', `${id} is a bootstrap key: remove it from OPSFLOW_API_KEYS instead`);
      }
      const target = await get(id); // 404 when there is no such key
      const beyond = target.scopes.filter((s) => !by.scopes.has(s));
      if (beyond.length > 0) {
        throw new KeyError('forbidden', `a key cannot revoke a key with scopes it does not hold: ${beyond.join(', ')}`);
      }
      if (target.revokedAt) throw new KeyError('conflict', `API key ${id} was revoked at ${target.revokedAt}`);
      const { rows } = await pool.query<KeyRow>(
        `WITH RECURSIVE minted(id) AS (
           SELECT id FROM opsflow.api_keys WHERE id = $1
           UNION
           SELECT k.id FROM opsflow.api_keys k JOIN minted m ON k.created_by_key = m.id
         )
         UPDATE opsflow.api_keys k SET revoked_at = now(), revoked_by = $2
         FROM minted WHERE k.id = minted.id AND k.revoked_at IS NULL
         RETURNING ${COLUMNS.split(', ')
           .map((c) => `k.${c}`)
           .join(', ')}`,
        [id, actorLabel(by)],
      );
      const self = rows.find((r) => r.id === id);
      if (!self) throw new KeyError('conflict', `API key ${id} was revoked just now by another request`);
      // This process stops at once (the others within `cacheMs`).
      const revoked = new Set(rows.map((r) => r.id));
      for (const [k, v] of cache) if (v.principal && revoked.has(v.principal.keyId)) cache.delete(k);
      return {
        ...recordJson(self),
        alsoRevoked: rows
          .filter((r) => r.id !== id)
          .sort((a, b) => a.created_at.getTime() - b.created_at.getTime())
          .map(recordJson),
      };
    },
  };
}
