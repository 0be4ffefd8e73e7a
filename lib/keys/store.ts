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
  source: 'env' | 'db';
  expiresAt: Date | null;
}

export interface ApiKeyRecord {
  id: string;
  name: string;
  scopes: Scope[];
  prefix: string;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
}

interface KeyRow {
  id: string;
  name: string;
  scopes: Scope[];
  prefix: string;
  created_at: Date;
  created_by: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  revoked_by: string | null;
}

const COLUMNS = 'id, name, scopes, prefix, created_at, created_by, expires_at, revoked_at, revoked_by';

const recordJson = (r: KeyRow): ApiKeyRecord => ({
  id: r.id,
  name: r.name,
  scopes: r.scopes,
  prefix: r.prefix,
  createdAt: r.created_at.toISOString(),
  createdBy: r.created_by,
  expiresAt: r.expires_at?.toISOString() ?? null,
  revokedAt: r.revoked_at?.toISOString() ?? null,
  revokedBy: r.revoked_by,
});

export const digest = (key: string) => createHash('sha256').update(key).digest();

/** A short, stable, non-secret id for a bootstrap key: a digest prefix (what the logs have always shown). */
export const envKeyId = (key: string) => `env_${digest(key).toString('hex').slice(0, 12)}`;

/** A refusal of the key store; the API renders it as its error envelope (lib/errors.ts). */
export class KeyError extends ServiceError {
  constructor(code: 'not_found' | 'conflict' | 'forbidden', message: string) {
    super(code, message);
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
    const r = rows[0];
    const principal: Principal | undefined = r && {
      keyId: r.id,
      keyName: r.name,
      scopes: new Set(r.scopes),
      source: 'db',
      expiresAt: r.expires_at,
    };
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
      return { keyId: r.id, keyName: r.name, scopes: new Set(r.scopes), source: 'db', expiresAt: r.expires_at };
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

    /** Makes a key. The key is in the answer and nowhere else: only its digest is stored. */
    async create(input: {
      name: string;
      scopes: Scope[];
      expiresAt?: Date;
      by: Principal;
    }): Promise<{ record: ApiKeyRecord; key: string }> {
      const beyond = input.scopes.filter((s) => !input.by.scopes.has(s));
      if (beyond.length > 0) {
        throw new KeyError('forbidden', `a key cannot grant scopes it does not hold: ${beyond.join(', ')}`);
      }
      const key = `opsk_${randomBytes(32).toString('base64url')}`;
      const { rows } = await pool.query<KeyRow>(
        `INSERT INTO opsflow.api_keys (id, name, scopes, hash, prefix, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
        [
          newId('key'),
          input.name,
          input.scopes,
          digest(key),
          key.slice(0, 12),
          actorLabel(input.by),
          input.expiresAt ?? null,
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

    /** Revokes a key; every API process refuses it within `cacheMs`. Revoking twice is a conflict. */
    async revoke(id: string, by: Actor): Promise<ApiKeyRecord> {
      if (env.some((k) => k.principal.keyId === id)) {
        throw new KeyError('conflict', `${id} is a bootstrap key: remove it from OPSFLOW_API_KEYS instead`);
      }
      const { rows } = await pool.query<KeyRow>(
        `UPDATE opsflow.api_keys SET revoked_at = now(), revoked_by = $2
         WHERE id = $1 AND revoked_at IS NULL RETURNING ${COLUMNS}`,
        [id, actorLabel(by)],
      );
      if (rows[0]) return recordJson(rows[0]);
      const existing = await get(id); // 404 when there is no such key
      throw new KeyError('conflict', `API key ${id} was revoked at ${existing.revokedAt}`);
    },
  };
}
