/**
 * The server's globals — roles and tablespaces, `pg_dumpall --globals-only --no-role-passwords` (any role may read
 * them so; passwords stay with the server) — stored beside a dump in every store, encrypted like it, and read back
 * from each: a restore onto a server without the source's roles needs them first (applyGlobals).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import pg from 'pg';
import { inTransaction } from '../../lib/db.js';
import type { GlobalsCopy, GlobalsRestore } from '../../lib/backups/contract.js';
import { decryptingStream, encryptingStream } from '../../lib/backups/encryption.js';
import { planGlobals } from '../../lib/backups/globals.js';
import type { BlobStore } from '../../lib/backups/stores.js';
import type { Config } from '../../lib/config.js';
import { BackupErrorType, bin, fail, pgConnection, run } from './pg-tools.js';

const sha256Of = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Dumps the globals of the server `url` is on and stores them under `key` in every store. */
export async function storeGlobals(
  config: Config,
  stores: BlobStore[],
  url: string,
  key: string,
): Promise<GlobalsCopy> {
  const conn = pgConnection(url);
  const dumpall = run(bin(config, 'pg_dumpall'), ['--globals-only', '--no-role-passwords', conn.arg], {
    env: conn.env,
  });
  let plain: Buffer;
  try {
    [plain] = await Promise.all([buffer(dumpall.child.stdout!), dumpall.done]);
  } catch (err) {
    throw fail(BackupErrorType.DumpFailed, `pg_dumpall --globals-only failed: ${(err as Error).message}`);
  }
  const encryptWith = config.backups.encryption.current;
  const bytes = encryptWith ? await buffer(Readable.from([plain]).pipe(encryptingStream(encryptWith))) : plain;
  const sha256 = sha256Of(bytes);
  for (const store of stores) {
    const write = store.write(key);
    write.sink.end(bytes);
    try {
      await write.commit();
      if (sha256Of(await buffer(await store.read(key))) !== sha256) throw new Error('read back differs');
    } catch (err) {
      await write.abort();
      throw fail(BackupErrorType.StoreFailed, `store ${store.name}: globals: ${(err as Error).message}`, false);
    }
  }
  return { key, sha256, sizeBytes: bytes.length };
}

/**
 * A DR restore's first step: the backup's globals, read back from a store (size and sha256 checked against the
 * catalogue, decrypted), applied to `server` — each role it lacks created as the source had it, each role it has
 * left as it is, memberships granted only to roles created now. Every role is its own savepoint: one the restoring
 * role may not create (a superuser, without being one) is named in `failed`, and the restore goes on (its objects
 * then belong to the restoring role, as `ownersNotKept` says).
 */
export async function applyGlobals(
  config: Config,
  copies: { store: BlobStore; copy: GlobalsCopy }[],
  serverUrl: string,
): Promise<GlobalsRestore> {
  const reasons: string[] = [];
  let sql: string | undefined;
  for (const { store, copy } of copies) {
    try {
      const stored = await buffer(await store.read(copy.key));
      if (stored.length !== copy.sizeBytes || sha256Of(stored) !== copy.sha256) {
        reasons.push(`${store.name}: differs from the catalogue (size ${stored.length}/${copy.sizeBytes}, sha256)`);
        continue;
      }
      sql = (await buffer(Readable.from([stored]).pipe(decryptingStream(config.backups.encryption)))).toString('utf8');
      break;
    } catch (err) {
      reasons.push(`${store.name}: ${(err as Error).message}`);
    }
  }
  if (sql === undefined) {
    const why = reasons.length > 0 ? reasons.join('; ') : 'no configured store holds them (BACKUP_STORES)';
    throw fail(BackupErrorType.RestoreFailed, `the backup's globals could not be read: ${why}`, false);
  }
  const plan = planGlobals(sql);
  const result: GlobalsRestore = { rolesCreated: [], rolesPresent: [], failed: [], skipped: plan.skipped.length };
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles');
    const present = new Set(rows.map((r) => r.rolname));
    // One transaction: a worker killed halfway leaves no half-made role, and a retry starts from what is there.
    await inTransaction(admin, async (tx) => {
      const attempt = async (statements: string[]): Promise<boolean> => {
        await tx.query('SAVEPOINT globals');
        for (const statement of statements) {
          try {
            await tx.query(statement);
          } catch (err) {
            await tx.query('ROLLBACK TO SAVEPOINT globals');
            result.failed.push({ statement, reason: (err as Error).message });
            return false;
          }
        }
        await tx.query('RELEASE SAVEPOINT globals');
        return true;
      };
      for (const role of plan.roles) {
        if (present.has(role.name)) result.rolesPresent.push(role.name);
        else if (await attempt(role.statements)) result.rolesCreated.push(role.name);
      }
      for (const m of plan.memberships) {
        // A membership changes its member: only members made now get theirs; a present role is never altered.
        if (!result.rolesCreated.includes(m.member)) continue;
        if (!present.has(m.role) && !result.rolesCreated.includes(m.role)) {
          result.failed.push({ statement: m.statement, reason: `role ${m.role} does not exist` });
          continue;
        }
        await attempt([m.statement]);
      }
    });
  } finally {
    await admin.end();
  }
  return result;
}
