/**
 * When the encryption key is lost (a second checkout on the same database, a deleted `.data/encryption-key`), the
 * endpoints whose signing secret or routing key no key opens cannot sign or page. `npm run secrets:forget` finds
 * them and, asked to, gives each a new signing secret (shown once: give it to the receiver) and disables the
 * PagerDuty ones whose routing key is lost (PATCH a new routingKey, then enable them) and those whose URL is lost
 * (PATCH the url, then enable them).
 */
import type { Pool } from '../db.js';
import type { SecretBox } from '../secret-box.js';
import { hostOf } from './urls.js';
import { generateSecret } from './signing.js';

export interface LostSecret {
  endpointId: string;
  host: string;
  /** What no key opens. */
  lost: ('url' | 'secret' | 'previous_secret' | 'routing_key')[];
  /** After `apply`: the new signing secret, if the secret was lost. */
  newSecret?: string;
  /** After `apply`: disabled because its routing key or URL was lost. */
  disabled?: boolean;
}

/** The endpoints holding a value no key of `box` opens; with `apply`, each is given what replaces it. */
export async function forgetLostSecrets(pool: Pool, box: SecretBox, opts: { apply: boolean }): Promise<LostSecret[]> {
  const { rows } = await pool.query<{
    id: string;
    url: string;
    url_origin: string;
    secret: string;
    previous_secret: string | null;
    routing_key: string | null;
  }>(
    'SELECT id, url, url_origin, secret, previous_secret, routing_key FROM opsflow.webhook_endpoints WHERE deleted_at IS NULL',
  );
  const found: LostSecret[] = [];
  for (const r of rows) {
    const lost = (['url', 'secret', 'previous_secret', 'routing_key'] as const).filter(
      (c) => r[c] !== null && !box.opens(r[c]),
    );
    if (lost.length === 0) continue;
    const entry: LostSecret = { endpointId: r.id, host: hostOf(r.url_origin), lost };
    if (opts.apply) {
      const secret = lost.includes('secret') ? generateSecret() : undefined;
      const disable = lost.includes('url')
        ? 'URL lost with the encryption key: PATCH the url, then enable'
        : lost.includes('routing_key')
          ? 'routing key lost with the encryption key: PATCH a new routingKey, then enable'
          : undefined;
      await pool.query(
        `UPDATE opsflow.webhook_endpoints SET
           secret = COALESCE($2, secret),
           previous_secret = CASE WHEN $3 THEN NULL ELSE previous_secret END,
           previous_secret_expires_at = CASE WHEN $3 THEN NULL ELSE previous_secret_expires_at END,
           enabled = CASE WHEN $4::text IS NOT NULL THEN false ELSE enabled END,
           disabled_reason = COALESCE($4, disabled_reason),
           disabled_at = CASE WHEN $4::text IS NOT NULL THEN now() ELSE disabled_at END,
           updated_at = now()
         WHERE id = $1`,
        [
          r.id,
          secret ? box.encrypt(secret) : null,
          lost.includes('previous_secret') || secret !== undefined,
          disable ?? null,
        ],
      );
      if (secret) entry.newSecret = secret;
      if (disable) entry.disabled = true;
    }
    found.push(entry);
  }
  return found;
}
