/**
 * Where backups are kept: a local directory and/or S3 (AWS or any S3-compatible server such as MinIO).
 * Writes never leave a partial object under a final name: the local store writes a temporary file and
 * renames it; the S3 store uses a multipart upload that is aborted on failure (S3 shows nothing until the
 * upload completes).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '../config.js';
import type { StoreName } from './contract.js';

export interface PendingWrite {
  /** Where the bytes go. */
  sink: Writable;
  /** Resolves once the object is durable under its final name. */
  commit(): Promise<void>;
  /** Removes whatever was written. */
  abort(): Promise<void>;
  /**
   * Resolves with the error once the store has given up (S3 refused a part, the disk filled) — while the writer
   * may still be waiting for the sink to drain, which it never will. Never resolves when the write succeeds.
   */
  failed: Promise<Error>;
}

/** `failed` for a write whose completion is `done`. */
const failureOf = (done: Promise<unknown>): Promise<Error> =>
  done.then(
    () => new Promise<Error>(() => undefined),
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );

export interface BlobStore {
  name: StoreName;
  write(key: string): PendingWrite;
  read(key: string): Promise<Readable>;
  remove(key: string): Promise<void>;
}

export function localStore(dir: string): BlobStore {
  const full = (key: string) => path.join(dir, key);
  return {
    name: 'local',
    write(key) {
      const final = full(key);
      const partial = `${final}.partial-${process.pid}-${Date.now()}`;
      const out = new PassThrough();
      const done = (async () => {
        // Dumps hold the whole database: readable by opsflow's user only, in directories only it can list (a
        // directory made by an earlier version with the default mode is tightened too; one opsflow does not own,
        // a mount point, is left as its owner set it — the file itself is still 0600).
        await mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
        for (const d of new Set([dir, path.dirname(final)])) {
          await chmod(d, 0o700).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'EPERM') throw err;
          });
        }
        // A retried attempt (its worker killed mid-write) leaves the previous attempt's temporary file behind.
        const stale = `${path.basename(final)}.partial-`;
        for (const f of await readdir(path.dirname(final))) {
          if (f.startsWith(stale)) await rm(path.join(path.dirname(final), f), { force: true });
        }
        await pipeline(out, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
      })();
      done.catch(() => undefined);
      return {
        sink: out,
        failed: failureOf(done),
        commit: async () => {
          await done;
          await rename(partial, final);
        },
        abort: async () => {
          out.destroy();
          await done.catch(() => undefined);
          await rm(partial, { force: true });
        },
      };
    },
    read: (key) => Promise.resolve(createReadStream(full(key))),
    remove: (key) => rm(full(key), { force: true }),
  };
}

export function s3Store(cfg: NonNullable<Config['backups']['s3']>): BlobStore {
  const client = new S3Client({
    region: cfg.region,
    endpoint: cfg.endpoint,
    forcePathStyle: cfg.forcePathStyle,
    ...(cfg.credentials ? { credentials: cfg.credentials } : {}),
    maxAttempts: 3,
  });
  const objectKey = (key: string) => `${cfg.prefix}${key}`;
  return {
    name: 's3',
    write(key) {
      const body = new PassThrough();
      const upload = new Upload({
        client,
        params: { Bucket: cfg.bucket, Key: objectKey(key), Body: body },
        partSize: 8 * 1024 * 1024,
        queueSize: 2, // bounded memory: at most two parts in flight
      });
      const done = upload.done();
      done.catch(() => undefined);
      return {
        sink: body,
        failed: failureOf(done),
        commit: async () => {
          await done;
        },
        abort: async () => {
          body.destroy();
          await upload.abort().catch(() => undefined);
          await done.catch(() => undefined);
        },
      };
    },
    async read(key) {
      const res = await client.send(new GetObjectCommand({ Bucket: cfg.bucket, Key: objectKey(key) }));
      return res.Body as Readable;
    },
    async remove(key) {
      await client.send(new DeleteObjectCommand({ Bucket: cfg.bucket, Key: objectKey(key) }));
    },
  };
}

/** BACKUP_STORES: the local directory, S3, or both (config checked that s3 has its bucket). */
export function configuredStores(config: Config): BlobStore[] {
  const { stores, dir, s3 } = config.backups;
  return [
    ...(stores.includes('local') ? [localStore(path.resolve(dir))] : []),
    ...(stores.includes('s3') && s3 ? [s3Store(s3)] : []),
  ];
}
