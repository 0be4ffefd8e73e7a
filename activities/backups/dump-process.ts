/**
 * The archive a dump step stores, as one stream of bytes, in either format:
 *
 * - `custom` (BACKUP_JOBS=1, the default): `pg_dump --format=custom` streamed straight from its stdout.
 * - `directory` (BACKUP_JOBS=N > 1): `pg_dump --format=directory --jobs=N` of the same snapshot into a private
 *   temporary directory (N connections dump N tables at once), then that directory as a tar stream. The stores,
 *   the encryption and the hash see the tar exactly as they see a custom archive; a restore recognises it by its
 *   header (isTarArchive) and unpacks it for `pg_restore --jobs`. The dump needs its own size on local disk for
 *   the moment between the two.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Config } from '../../lib/config.js';
import { bin, pgConnection, run } from './pg-tools.js';

export type DumpFormat = 'custom' | 'directory';

export interface DumpProcess {
  format: DumpFormat;
  /** The archive's bytes. */
  stdout: Readable;
  /** Settles when every byte has been produced (or the dump failed), its temporary files removed. */
  done: Promise<unknown>;
  /** Stops the dump wherever it is (pg_dump or tar killed, the stream destroyed). */
  stop: () => void;
  /** Bytes a directory dump has written to its temporary directory so far (progress before the stream starts). */
  staged: () => number;
}

export function startDump(config: Config, url: string, snapshot: string): DumpProcess {
  const conn = pgConnection(url);
  if (config.backups.jobs <= 1) {
    const dump = run(bin(config, 'pg_dump'), ['--format=custom', `--snapshot=${snapshot}`, conn.arg], {
      env: conn.env,
    });
    return {
      format: 'custom',
      stdout: dump.child.stdout!,
      done: dump.done,
      // Killing is not enough while the pipe is paused: its unread bytes keep the child's 'close' from firing.
      stop: () => {
        dump.child.kill('SIGKILL');
        dump.child.stdout?.destroy();
      },
      staged: () => 0,
    };
  }
  const out = new PassThrough();
  let current: ReturnType<typeof run> | undefined;
  let stopped = false;
  let staged = 0;
  const done = (async () => {
    const root = path.resolve(config.dataDir, 'tmp');
    await mkdir(root, { recursive: true, mode: 0o700 });
    const tmp = await mkdtemp(path.join(root, 'dump-'));
    const dir = path.join(tmp, 'archive');
    const poll = setInterval(() => {
      void sizeOf(dir).then((n) => (staged = n));
    }, 1000);
    try {
      current = run(
        bin(config, 'pg_dump'),
        ['--format=directory', `--jobs=${config.backups.jobs}`, `--snapshot=${snapshot}`, `--file=${dir}`, conn.arg],
        { env: conn.env },
      );
      await current.done;
      clearInterval(poll);
      if (stopped) throw new Error('dump stopped');
      staged = await sizeOf(dir);
      // Relative names, no owners: the archive unpacks anywhere as whoever restores it.
      current = run('tar', ['--create', '--file=-', '--directory', dir, '--numeric-owner', '.']);
      current.child.stdout!.pipe(out);
      await current.done;
    } catch (err) {
      out.destroy(err as Error);
      throw err;
    } finally {
      clearInterval(poll);
      await rm(tmp, { recursive: true, force: true });
    }
  })();
  return {
    format: 'directory',
    stdout: out,
    done,
    stop: () => {
      stopped = true;
      current?.child.kill('SIGKILL');
      current?.child.stdout?.destroy();
      out.destroy();
    },
    staged: () => staged,
  };
}

async function sizeOf(dir: string): Promise<number> {
  try {
    const names = await readdir(dir);
    const sizes = await Promise.all(
      names.map((n) =>
        stat(path.join(dir, n)).then(
          (s) => s.size,
          () => 0,
        ),
      ),
    );
    return sizes.reduce((a, b) => a + b, 0);
  } catch {
    return 0;
  }
}

/** A POSIX tar (what a directory dump is stored as): "ustar" at offset 257 of its first block. */
export async function isTarArchive(file: string): Promise<boolean> {
  const head: Buffer[] = [];
  for await (const chunk of createReadStream(file, { start: 0, end: 511 })) head.push(chunk as Buffer);
  return Buffer.concat(head).subarray(257, 262).toString('latin1') === 'ustar';
}

/** Unpacks a stored directory dump into `dir` (created), for pg_restore to read as a directory archive. */
export async function unpackDirectoryDump(file: string, dir: string): Promise<void> {
  await mkdir(dir, { mode: 0o700 });
  await run('tar', ['--extract', `--file=${file}`, '--directory', dir, '--no-same-owner', '--no-same-permissions'])
    .done;
}
