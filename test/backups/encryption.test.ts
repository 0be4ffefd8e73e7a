/**
 * Backup encryption's stream format (lib/backups/encryption.ts), byte for byte: copies of every awkward size go
 * through and come back; the stored bytes hold none of the plaintext; a previous key still opens its copies; an
 * unknown key fails naming its id; a flipped byte, a dropped or cut-off chunk, a cut header and trailing bytes
 * fail; a copy made before encryption passes through unchanged. Real streams, real AES-GCM.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  BackupKeyError,
  backupKeyId,
  CHUNK_BYTES,
  decryptingStream,
  encryptingStream,
  type BackupKeys,
} from '../../lib/backups/encryption.js';

/** Streams `input` through `t` in pieces of `piece` bytes and collects what comes out. */
async function through(t: NodeJS.ReadWriteStream, input: Buffer, piece = 64 * 1024): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += piece) pieces.push(input.subarray(i, i + piece));
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), t, async (source: AsyncIterable<string | Buffer>) => {
    for await (const c of source) out.push(Buffer.from(c));
  });
  return Buffer.concat(out);
}

const key = randomBytes(32);
const other = randomBytes(32);
const keys: BackupKeys = { current: key, previous: [] };

describe('backup encryption', () => {
  it.each([0, 1, 3, 1000, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 12345])(
    'a copy of %i bytes comes back whole, and its stored bytes hold none of it',
    async (n) => {
      const plain = Buffer.concat([Buffer.from('PLAINTEXT-MARKER '), randomBytes(n)]).subarray(0, Math.max(n, 17));
      const stored = await through(encryptingStream(key), plain);
      expect(stored.subarray(0, 4).toString()).toBe('OFBE');
      expect(stored.subarray(5, 9)).toEqual(backupKeyId(key));
      expect(stored.includes(Buffer.from('PLAINTEXT-MARKER'))).toBe(false);
      // Pieces smaller and larger than a chunk, and odd ones, on the way back.
      for (const piece of [7, 65536, 2 * CHUNK_BYTES + 3]) {
        expect((await through(decryptingStream(keys), stored, piece)).equals(plain)).toBe(true);
      }
    },
  );

  it('two copies of the same bytes differ (a salt per copy)', async () => {
    const plain = randomBytes(5000);
    const a = await through(encryptingStream(key), plain);
    const b = await through(encryptingStream(key), plain);
    expect(a.equals(b)).toBe(false);
  });

  it('a previous key opens its copies; an unknown key fails naming its id', async () => {
    const plain = randomBytes(3000);
    const old = await through(encryptingStream(other), plain);
    const rotated = await through(decryptingStream({ current: key, previous: [other] }), old);
    expect(rotated.equals(plain)).toBe(true);
    const id = backupKeyId(other).toString('hex');
    await expect(through(decryptingStream(keys), old)).rejects.toThrow(BackupKeyError);
    await expect(through(decryptingStream(keys), old)).rejects.toThrow(`encrypted under key ${id}`);
    await expect(through(decryptingStream({ current: undefined, previous: [] }), old)).rejects.toThrow(
      /BACKUP_ENCRYPTION_KEY \(unset\)/,
    );
  });

  it('a flipped byte, a dropped chunk, a cut copy, a cut header and trailing bytes fail', async () => {
    const plain = randomBytes(2 * CHUNK_BYTES + 100);
    const stored = await through(encryptingStream(key), plain);
    const open = (b: Buffer) => through(decryptingStream(keys), b);
    for (const at of [30, CHUNK_BYTES, stored.length - 1]) {
      const flipped = Buffer.from(stored);
      flipped[at]! ^= 1;
      await expect(open(flipped), `byte ${at}`).rejects.toThrow(/does not authenticate|corrupt/);
    }
    // Chunk 1 (the second) removed: chunk 2 arrives where chunk 1 should be.
    const first = 25 + 4 + CHUNK_BYTES + 16;
    const second = first + 4 + CHUNK_BYTES + 16;
    await expect(open(Buffer.concat([stored.subarray(0, first), stored.subarray(second)]))).rejects.toThrow(
      /does not authenticate/,
    );
    // Cut after whole chunks, or mid-chunk: never the last one, so truncated.
    await expect(open(stored.subarray(0, second))).rejects.toThrow(/truncated/);
    await expect(open(stored.subarray(0, second + 10))).rejects.toThrow(/truncated/);
    await expect(open(stored.subarray(0, 12))).rejects.toThrow(/truncated: it ends inside its encryption header/);
    await expect(open(Buffer.concat([stored, Buffer.from('x')]))).rejects.toThrow(/after its last chunk/);
  });

  it('a copy made before encryption passes through unchanged', async () => {
    for (const plain of [Buffer.from('PGDMP plain custom-format bytes'), Buffer.from('PG'), Buffer.alloc(0)]) {
      expect((await through(decryptingStream(keys), plain)).equals(plain)).toBe(true);
    }
  });
});
