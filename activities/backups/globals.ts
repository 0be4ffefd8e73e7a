/**
 * The server's globals — roles and tablespaces, `pg_dumpall --globals-only --no-role-passwords` (any role may read
 * them so; passwords stay with the server) — stored beside a dump in every store, encrypted like it, and read back
 * from each: a restore onto a server without the source's roles needs them first.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { GlobalsCopy } from '../../lib/backups/contract.js';
import { encryptingStream } from '../../lib/backups/encryption.js';
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
