/**
 * Backup encryption: every stored copy is encrypted client-side while it streams, under BACKUP_ENCRYPTION_KEY, so a
 * leaked bucket or disk holds no database. AES-256-GCM in authenticated chunks, with Node's own crypto — not `age`:
 * no binary to install beside pg_dump, no second key format, and the chunking is a few lines (the same scheme as
 * age's STREAM, and Tink's streaming AEAD):
 *
 *   header  "OFBE" | version 1 | key id (4 bytes) | salt (16 bytes)
 *   chunk   length (u32, top bit: last chunk) | ciphertext | GCM tag (16 bytes)      — repeated
 *
 * Each copy has its own key, HKDF-SHA256 of the backup key and the copy's random salt, so chunk nonces are just
 * the chunk's index. Each chunk's tag covers the header and its own length field (so the last-chunk bit too): a
 * chunk altered, moved, dropped or cut off fails, and a copy that ends without its last chunk is truncated. The
 * key id (a digest prefix of the key, as for OPSFLOW_ENCRYPTION_KEY) names the key a copy needs; a copy under a
 * key that is neither BACKUP_ENCRYPTION_KEY nor one of BACKUP_ENCRYPTION_KEY_PREVIOUS fails naming that id.
 * A copy that does not start with the header (made before encryption was set) passes through as it is: the
 * catalogue's sha256 already proved it is what was stored.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

const MAGIC = Buffer.from('OFBE');
const VERSION = 1;
const HEADER_BYTES = MAGIC.length + 1 + 4 + 16;
/** Plaintext per chunk. */
export const CHUNK_BYTES = 1024 * 1024;
const TAG_BYTES = 16;
const LAST = 0x8000_0000;
const INFO = Buffer.from('opsflow backup v1');

export interface BackupKeys {
  current: Buffer | undefined;
  previous: Buffer[];
}

export class BackupKeyError extends Error {}

/** A key's id as copies carry it: the first 4 bytes of its SHA-256 (8 hex digits). */
export const backupKeyId = (key: Buffer) => createHash('sha256').update(key).digest().subarray(0, 4);

const copyKey = (key: Buffer, salt: Buffer) => Buffer.from(hkdfSync('sha256', key, salt, INFO, 32));

function nonce(index: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(index), 4);
  return n;
}

/** Encrypts a stream into the format above under `key`. */
export function encryptingStream(key: Buffer): Transform {
  const salt = randomBytes(16);
  const header = Buffer.concat([MAGIC, Buffer.from([VERSION]), backupKeyId(key), salt]);
  const k = copyKey(key, salt);
  let index = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let headerSent = false;
  const seal = (plain: Buffer, last: boolean): Buffer => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE((plain.length | (last ? LAST : 0)) >>> 0);
    const cipher = createCipheriv('aes-256-gcm', k, nonce(index++));
    cipher.setAAD(Buffer.concat([header, length]));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    const out = [length, body, cipher.getAuthTag()];
    if (!headerSent) {
      headerSent = true;
      out.unshift(header);
    }
    return Buffer.concat(out);
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes > CHUNK_BYTES) {
        const all = Buffer.concat(pending);
        this.push(seal(all.subarray(0, CHUNK_BYTES), false));
        pending = [all.subarray(CHUNK_BYTES)];
        pendingBytes = pending[0]!.length;
      }
      done();
    },
    flush(done: TransformCallback) {
      // The last chunk is always written, empty if need be: its bit is what tells a whole copy from a cut one.
      this.push(seal(Buffer.concat(pending), true));
      done();
    },
  });
}

/**
 * Decrypts a stream in the format above with whichever of `keys` its id names; passes a stream without the
 * header through unchanged. Errors (in the stream): an unknown key (BackupKeyError, naming its id), a chunk that
 * does not authenticate, a copy cut short.
 */
export function decryptingStream(keys: BackupKeys): Transform {
  const known = new Map(
    [...(keys.current ? [keys.current] : []), ...keys.previous].map((k) => [backupKeyId(k).toString('hex'), k]),
  );
  let buffered = Buffer.alloc(0);
  let mode: 'start' | 'plain' | 'chunks' | 'done' = 'start';
  let header = Buffer.alloc(0);
  let k: Buffer | undefined;
  let index = 0;
  const step = (self: Transform): void => {
    if (mode === 'start') {
      if (buffered.length < MAGIC.length) return;
      if (!buffered.subarray(0, MAGIC.length).equals(MAGIC)) {
        mode = 'plain';
        self.push(buffered);
        buffered = Buffer.alloc(0);
        return;
      }
      if (buffered.length < HEADER_BYTES) return;
      header = buffered.subarray(0, HEADER_BYTES);
      if (header[MAGIC.length] !== VERSION) throw new Error(`unknown backup encryption version ${header[4]}`);
      const id = header.subarray(5, 9).toString('hex');
      const key = known.get(id);
      if (!key) {
        throw new BackupKeyError(
          `the copy is encrypted under key ${id}, which is neither BACKUP_ENCRYPTION_KEY${keys.current ? ` (${backupKeyId(keys.current).toString('hex')})` : ' (unset)'} nor one of BACKUP_ENCRYPTION_KEY_PREVIOUS`,
        );
      }
      k = copyKey(key, header.subarray(9, HEADER_BYTES));
      buffered = buffered.subarray(HEADER_BYTES);
      mode = 'chunks';
    }
    while (mode === 'chunks' && buffered.length >= 4) {
      const field = buffered.readUInt32BE(0);
      const length = field & ~LAST;
      if (length > CHUNK_BYTES) throw new Error(`backup copy corrupt: chunk ${index} claims ${length} bytes`);
      if (buffered.length < 4 + length + TAG_BYTES) return;
      const decipher = createDecipheriv('aes-256-gcm', k!, nonce(index));
      decipher.setAAD(Buffer.concat([header, buffered.subarray(0, 4)]));
      decipher.setAuthTag(buffered.subarray(4 + length, 4 + length + TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(buffered.subarray(4, 4 + length)), decipher.final()]);
      } catch {
        throw new Error(`backup copy corrupt: chunk ${index} does not authenticate`);
      }
      index += 1;
      buffered = buffered.subarray(4 + length + TAG_BYTES);
      self.push(plain);
      if (field & LAST) mode = 'done';
    }
    if (mode === 'done' && buffered.length > 0) throw new Error('backup copy corrupt: bytes after its last chunk');
  };
  // Incoming pieces are joined only once a whole chunk is there (not on every piece: a chunk is many of them).
  let parts: Buffer[] = [];
  let have = 0;
  let need = MAGIC.length;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      if (mode === 'plain') return done(null, chunk);
      parts.push(chunk);
      have += chunk.length;
      if (have < need) return done();
      buffered = Buffer.concat([buffered, ...parts]);
      parts = [];
      have = 0;
      try {
        step(this);
        // The bytes the next step needs before it can do anything.
        need =
          mode === 'start'
            ? HEADER_BYTES - buffered.length
            : mode === 'chunks' && buffered.length >= 4
              ? 4 + (buffered.readUInt32BE(0) & ~LAST) + TAG_BYTES - buffered.length
              : 1;
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      buffered = Buffer.concat([buffered, ...parts]);
      try {
        if (buffered.length > 0) step(this);
      } catch (err) {
        return done(err as Error);
      }
      if (mode === 'start') {
        if (buffered.length >= MAGIC.length) {
          return done(new Error('backup copy truncated: it ends inside its encryption header'));
        }
        // Shorter than the header's magic: a plain copy of a few bytes.
        this.push(buffered);
        return done();
      }
      if (mode === 'chunks') {
        return done(new Error(`backup copy truncated: it ends before its last chunk (after ${index} chunks)`));
      }
      done();
    },
  });
}
