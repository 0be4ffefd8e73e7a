/**
 * A stored copy made ready for pg_restore: fetched into a private temporary file (under OPSFLOW_DATA_DIR/tmp, mode
 * 0600) while its stored bytes are hashed and decrypted (lib/backups/encryption.ts), handed back only when its size
 * and sha256 match the catalogue — a tampered copy never reaches pg_restore — and when its table of contents
 * (`pg_restore --list`, the file only, no server) reads and lists every table the snapshot counted. Otherwise the
 * file is removed and the reason returned. The caller removes `dir` when done.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import type { StoredCopy } from '../../lib/backups/contract.js';
import { decryptingStream } from '../../lib/backups/encryption.js';
import type { BlobStore } from '../../lib/backups/stores.js';
import type { Config } from '../../lib/config.js';
import { isTarArchive, unpackDirectoryDump } from './dump-process.js';
import { archiveContents } from './pg-tools.js';

/** `file`: what pg_restore reads — the archive file, or the unpacked directory of a directory dump. */
export type CheckedCopy = { ok: true; file: string; dir: string; owners: string[] } | { ok: false; reason: string };

export async function checkedCopy(
  config: Config,
  store: BlobStore,
  location: StoredCopy,
  expected: { sha256: string; sizeBytes: number; tables: string[] },
): Promise<CheckedCopy> {
  const root = path.resolve(config.dataDir, 'tmp');
  await mkdir(root, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(path.join(root, 'restore-'));
  const refuse = async (reason: string): Promise<CheckedCopy> => {
    await rm(dir, { recursive: true, force: true });
    return { ok: false, reason };
  };
  const file = path.join(dir, 'backup.dump');
  const hash = createHash('sha256');
  let size = 0;
  const beat = setInterval(() => Context.current().heartbeat({ step: 'fetch', bytes: size }), 1000);
  try {
    const source = await store.read(location.key);
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    // Hashed as stored, decrypted on the way to the file (what pg_restore reads once the hash matched).
    await pipeline(source, tap, decryptingStream(config.backups.encryption), createWriteStream(file, { mode: 0o600 }));
  } catch (err) {
    return refuse(`${location.store} copy unreadable: ${(err as Error).message}`);
  } finally {
    clearInterval(beat);
  }
  if (size !== expected.sizeBytes || hash.digest('hex') !== expected.sha256) {
    return refuse(
      `${location.store} copy differs from the catalog (size ${size}/${expected.sizeBytes}, sha256 mismatch); nothing was restored from it`,
    );
  }
  // A directory dump (BACKUP_JOBS > 1) is stored as a tar of its directory: pg_restore reads the directory.
  let archive = file;
  try {
    if (await isTarArchive(file)) {
      archive = path.join(dir, 'archive');
      await unpackDirectoryDump(file, archive);
      await rm(file, { force: true });
    }
  } catch (err) {
    return refuse(`not a readable directory archive (tar): ${(err as Error).message.slice(0, 500)}`);
  }
  // Its table of contents before any server is touched: an unreadable archive, or one that lacks a table the
  // snapshot counted, fails here, naming it, without a database created or a statement run.
  let contents: { owners: string[]; tables: string[] };
  try {
    contents = await archiveContents(config, archive);
  } catch (err) {
    const detail = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim().slice(0, 500);
    return refuse(`not a readable archive (pg_restore --list): ${detail}`);
  }
  const unlisted = expected.tables.filter((t) => !contents.tables.includes(t));
  if (unlisted.length > 0) {
    return refuse(`the archive lists no table ${unlisted.join(', ')} (pg_restore --list), which the snapshot counted`);
  }
  return { ok: true, file: archive, dir, owners: contents.owners };
}
