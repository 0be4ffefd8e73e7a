/**
 * When the encryption key is lost (a second checkout on the same database, a deleted `.data/encryption-key`), the
 * endpoints whose signing secret or routing key no key opens cannot sign or page. `npm run secrets:forget` finds
 * them and, asked to, gives each a new signing secret (shown once: give it to the receiver) and disables the
 * PagerDuty ones whose routing key is lost (PATCH a new routingKey, then enable them).
 */
import type { Pool } from '../db.js';
import type { SecretBox } from '../secret-box.js';
import { hostOf } from './endpoints.js';
import { generateSecret } from './signing.js';

export interface LostSecret {
  endpointId: string;
  host: string;
  /** What no key opens. */
  lost: ('secret' | 'previous_secret' | 'routing_key')[];
  /** After `apply`: the new signing secret, if the secret was lost. */
  newSecret?: string;
  /** After `apply`: disabled because its routing key was lost. */
  disabled?: boolean;
}

/** The endpoints holding a value no key of `box` opens; with `apply`, each is given what replaces it. */
export async function forgetLostSecrets(pool: Pool, box: SecretBox, opts: { apply: boolean }): Promise<LostSecret[]> {
  const { rows } = await pool.query<{
    id: string;
    url: string;
    secret: string;
    previous_secret: string | null;
    routing_key: string | null;
  }>('SELECT id, url, secret, previous_secret, routing_key FROM opsflow.webhook_endpoints WHERE deleted_at IS NULL');
  const found: LostSecret[] = [];
  for (const r of rows) {
    const lost = (['secret', 'previous_secret', 'routing_key'] as const).filter(
      (c) => r[c] !== null && !box.opens(r[c]),
    );
    if (lost.length === 0) continue;
    const entry: LostSecret = { endpointId: r.id, host: hostOf(r.url), lost };
    if (opts.apply) {
      const secret = lost.includes('secret') ? generateSecret() : undefined;
      const routingLost = lost.includes('routing_key');
      await pool.query(
        `UPDATE opsflow.webhook_endpoints SET
           secret = COALESCE($2, secret),
           previous_secret = CASE WHEN $3 THEN NULL ELSE previous_secret END,
           previous_secret_expires_at = CASE WHEN $3 THEN NULL ELSE previous_secret_expires_at END,
           enabled = CASE WHEN $4 THEN false ELSE enabled END,
           disabled_reason = CASE WHEN $4 THEN 'routing key lost with the encryption key: PATCH a new routingKey, then enable' ELSE disabled_reason END,
           disabled_at = CASE WHEN $4 THEN now() ELSE disabled_at END,
           updated_at = now()
         WHERE id = $1`,
        [
          r.id,
          secret ? box.encrypt(secret) : null,
          lost.includes('previous_secret') || secret !== undefined,
          routingLost,
        ],
      );
      if (secret) entry.newSecret = secret;
      if (routingLost) entry.disabled = true;
    }
    found.push(entry);
  }
  return found;
}
