/**
 * Secrets opsflow must be able to read back (webhook signing secrets, PagerDuty routing keys, endpoint URLs) are stored encrypted with
 * OPSFLOW_ENCRYPTION_KEY: AES-256-GCM, a fresh 96-bit IV per value, stored as
 * `v1.<key id>.<iv>.<ciphertext>.<tag>` (base64url), the key id being a digest prefix of the key. A database
 * dump (every backup of opsflow's own database) then holds nothing that signs a webhook.
 *
 * Rotation: put the new key in OPSFLOW_ENCRYPTION_KEY and the old one in OPSFLOW_ENCRYPTION_KEY_PREVIOUS;
 * values under either decrypt, and `encryptStoredSecrets` (run by every worker at start and by
 * `npm run migrate`) rewrites every value under the current key. Once it has run, drop the previous key.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Pool } from './db.js';
import type { Logger } from './logger.js';

const PREFIX = 'v1';
const AAD = Buffer.from('opsflow:webhook-secret');

/** A key from the environment: 32 bytes as base64 (what `openssl rand -base64 32` prints) or as 64 hex digits. */
export function parseEncryptionKey(text: string): Buffer | undefined {
  const s = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(s) ? Buffer.from(s, 'hex') : Buffer.from(s, 'base64');
  return bytes.length === 32 && (bytes.toString('base64') === s || /^[0-9a-fA-F]{64}$/.test(s)) ? bytes : undefined;
}

const keyId = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 8);

export class SecretBoxError extends Error {}

export interface SecretBox {
  encrypt(plaintext: string): string;
  decrypt(stored: string): string;
  /** Whether `stored` is encrypted under the current key (nothing to rewrite). */
  isCurrent(stored: string): boolean;
  /** Whether this box can read `stored`: encrypted under one of its keys, or plaintext from before encryption. */
  opens(stored: string): boolean;
}

export function createSecretBox(keys: { current: Buffer | undefined; previous: Buffer[] }): SecretBox {
  const current = keys.current;
  if (!current) {
    throw new SecretBoxError(
      'OPSFLOW_ENCRYPTION_KEY is not set (nor OPSFLOW_ENCRYPTION_KEY_FILE, nor <OPSFLOW_DATA_DIR>/encryption-key): make one with `openssl rand -base64 32`',
    );
  }
  const byId = new Map([current, ...keys.previous].map((k) => [keyId(k), k]));
  const currentId = keyId(current);
  return {
    encrypt(plaintext) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', current, iv).setAAD(AAD);
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [PREFIX, currentId, iv, ct, cipher.getAuthTag()]
        .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
        .join('.');
    },
    decrypt(stored) {
      const parts = stored.split('.');
      if (parts.length !== 5 || parts[0] !== PREFIX) throw new SecretBoxError('not an encrypted value');
      const key = byId.get(parts[1]!);
      if (!key) {
        throw new SecretBoxError(
          `encrypted under key ${parts[1]}, which is neither OPSFLOW_ENCRYPTION_KEY nor OPSFLOW_ENCRYPTION_KEY_PREVIOUS`,
        );
      }
      const [iv, ct, tag] = parts.slice(2).map((p) => Buffer.from(p, 'base64url'));
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv!).setAAD(AAD).setAuthTag(tag!);
        return Buffer.concat([decipher.update(ct!), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretBoxError('encrypted value does not authenticate (altered, or another key)');
      }
    },
    isCurrent(stored) {
      return stored.startsWith(`${PREFIX}.${currentId}.`);
    },
    opens(stored) {
      if (!stored.startsWith(`${PREFIX}.`)) return true;
      try {
        this.decrypt(stored);
        return true;
      } catch {
        return false;
      }
    },
  };
}

/**
 * A stored value in the clear: decrypted, or as it was written before encryption (an endpoint URL written by a
 * previous release during a rolling upgrade, until a worker's start encrypts it). Throws SecretBoxError when no
 * key opens it.
 */
export const openStored = (box: SecretBox, stored: string): string =>
  stored.startsWith(`${PREFIX}.`) ? box.decrypt(stored) : stored;

/** The dev stack's key: `<data dir>/encryption-key` (mode 0600), made on first start and kept. */
export async function ensureEncryptionKeyFile(dataDir: string): Promise<string> {
  const file = path.resolve(dataDir, 'encryption-key');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' }).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    },
  );
  await chmod(file, 0o600);
  return (await readFile(file, 'utf8')).trim();
}

/**
 * Every column opsflow stores encrypted, by table and key column: what a key rotation rewrites. A new encrypted
 * column joins this list (test/security/encryption-rotation.test.ts fails on an encrypted value outside it).
 * `plaintextBefore` names the columns that held plaintext in rows written before encryption existed.
 */
export const ENCRYPTED_COLUMNS: readonly {
  table: string;
  key: string;
  columns: readonly string[];
  plaintextBefore: readonly string[];
  /**
   * Columns whose plaintext values a release before the named migration reads as plaintext: they are encrypted
   * only once that migration has been applied for PLAINTEXT_GRACE_MS, so that a process of the previous release
   * still running during a rolling upgrade never reads a value it cannot use.
   */
  plaintextUntilSettled?: Readonly<Record<string, string>>;
}[] = [
  {
    table: 'opsflow.webhook_endpoints',
    key: 'id',
    columns: ['url', 'secret', 'previous_secret', 'routing_key'],
    plaintextBefore: ['url', 'secret', 'previous_secret'],
    plaintextUntilSettled: { url: '023_endpoint_url_at_rest.sql' },
  },
];

/** How long after a migration its release's plaintext columns wait to be encrypted (see plaintextUntilSettled). */
export const PLAINTEXT_GRACE_MS = 15 * 60_000;

/**
 * When the columns held back by plaintextUntilSettled may be encrypted: undefined when none is held back now
 * (their migrations settled, or not applied). A worker started within the grace runs encryptStoredSecrets again
 * then.
 */
export async function plaintextHeldUntil(
  pool: Pool,
  graceMs = PLAINTEXT_GRACE_MS,
  now = new Date(),
): Promise<Date | undefined> {
  const migrations = ENCRYPTED_COLUMNS.flatMap((c) => Object.values(c.plaintextUntilSettled ?? {}));
  if (migrations.length === 0) return undefined;
  const { rows } = await pool.query<{ applied_at: Date }>(
    'SELECT applied_at FROM opsflow.schema_migrations WHERE version = ANY ($1)',
    [migrations],
  );
  const until = Math.max(0, ...rows.map((r) => r.applied_at.getTime() + graceMs));
  return until > now.getTime() ? new Date(until) : undefined;
}

/**
 * Rewrites every value of ENCRYPTED_COLUMNS that is plaintext (webhook secrets from before encryption) or
 * encrypted under a previous key, under the current key. Idempotent; row by row, each in its own statement that
 * changes the row only if it still holds what was read. A value no key opens is left as it is (and counted): the
 * attempts that need it fail saying so.
 */
export async function encryptStoredSecrets(
  pool: Pool,
  box: SecretBox,
  log?: Logger,
  opts: { plaintextGraceMs?: number } = {},
): Promise<number> {
  let rewritten = 0;
  let unreadable = 0;
  const heldUntil = await plaintextHeldUntil(pool, opts.plaintextGraceMs);
  for (const { table, key, columns, plaintextBefore, plaintextUntilSettled } of ENCRYPTED_COLUMNS) {
    // Plaintext a previous release may still be reading stays plaintext until its migration settles.
    const keepPlain = (column: string, v: string) =>
      heldUntil !== undefined && plaintextUntilSettled?.[column] !== undefined && !v.startsWith(`${PREFIX}.`);
    const { rows } = await pool.query<Record<string, string | null>>(
      `SELECT ${key}, ${columns.join(', ')} FROM ${table} WHERE ${columns.map((c) => `${c} IS NOT NULL`).join(' OR ')}`,
    );
    for (const r of rows) {
      const values = columns.map((c) => r[c] ?? null);
      const settled = (v: string | null, i: number) => v === null || box.isCurrent(v) || keepPlain(columns[i]!, v);
      if (values.every(settled)) continue;
      let next: (string | null)[];
      try {
        next = values.map((v, i) =>
          v === null || settled(v, i)
            ? v
            : box.encrypt(v.startsWith(`${PREFIX}.`) || !plaintextBefore.includes(columns[i]!) ? box.decrypt(v) : v),
        );
      } catch (err) {
        if (!(err instanceof SecretBoxError)) throw err;
        unreadable += 1;
        continue;
      }
      const sets = columns.map((c, i) => `${c} = $${i + 2}`).join(', ');
      const same = columns.map((c, i) => `${c} IS NOT DISTINCT FROM $${i + 2 + columns.length}`).join(' AND ');
      await pool.query(`UPDATE ${table} SET ${sets} WHERE ${key} = $1 AND ${same}`, [r[key], ...next, ...values]);
      rewritten += 1;
    }
  }
  if (rewritten > 0) log?.info({ rewritten }, 'stored secrets encrypted under the current key');
  if (unreadable > 0) {
    log?.warn(
      { unreadable },
      'stored secrets under a key that is neither OPSFLOW_ENCRYPTION_KEY nor OPSFLOW_ENCRYPTION_KEY_PREVIOUS: left as they are; their deliveries fail until the key is restored (OPSFLOW_ENCRYPTION_KEY_PREVIOUS) or `npm run secrets:forget -- --yes` gives those endpoints new secrets',
    );
  }
  return rewritten;
}
