/**
 * Console sessions: logging in with an API key makes one. The browser holds a random token in an HttpOnly,
 * SameSite=Strict cookie; PostgreSQL holds its SHA-256 digest (the token is high-entropy, as API keys are),
 * the key's id and a CSRF token that every write must send back in a header. Sessions live in PostgreSQL so
 * that every API process knows them and logging out ends one everywhere; what a session may do is looked up
 * from its key on every request, so a revoked or expired key ends its sessions at once.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Pool } from '../db.js';
import { digest } from '../keys/store.js';

export const SESSION_COOKIE = 'opsflow_session';

export interface Session {
  keyId: string;
  csrfToken: string;
  expiresAt: Date;
}

export type SessionStore = ReturnType<typeof createSessionStore>;

export function createSessionStore(opts: { pool: Pool; ttlMs: number; idleMs?: number }) {
  const { pool, ttlMs } = opts;
  const idleMs = opts.idleMs ?? ttlMs;
  return {
    ttlMs,
    idleMs,

    /** A new session for a key; expired sessions are removed on the way (the table stays as small as its use). */
    async create(keyId: string): Promise<{ token: string; session: Session }> {
      const token = randomBytes(32).toString('base64url');
      const csrfToken = randomBytes(24).toString('base64url');
      await pool.query('DELETE FROM opsflow.console_sessions WHERE expires_at < now()');
      const { rows } = await pool.query<{ expires_at: Date }>(
        `INSERT INTO opsflow.console_sessions (token_hash, key_id, csrf_token, expires_at)
         VALUES ($1, $2, $3, now() + ($4::bigint * interval '1 millisecond')) RETURNING expires_at`,
        [digest(token), keyId, csrfToken, ttlMs],
      );
      return { token, session: { keyId, csrfToken, expiresAt: rows[0]!.expires_at } };
    },

    /**
     * The live session a cookie's token stands for, or undefined: not past its lifetime, and used within the idle
     * timeout — which this use restarts.
     */
    async find(token: string): Promise<Session | undefined> {
      if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
      const { rows } = await pool.query<{ key_id: string; csrf_token: string; expires_at: Date }>(
        `UPDATE opsflow.console_sessions SET last_seen_at = now()
         WHERE token_hash = $1 AND expires_at > now() AND last_seen_at > now() - ($2::bigint * interval '1 millisecond')
         RETURNING key_id, csrf_token, expires_at`,
        [digest(token), idleMs],
      );
      const r = rows[0];
      return r && { keyId: r.key_id, csrfToken: r.csrf_token, expiresAt: r.expires_at };
    },

    async destroy(token: string): Promise<void> {
      await pool.query('DELETE FROM opsflow.console_sessions WHERE token_hash = $1', [digest(token)]);
    },
  };
}

/** Whether a presented CSRF token is the session's, in constant time. */
export function csrfMatches(session: Session, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(session.csrfToken);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
