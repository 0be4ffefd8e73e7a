/**
 * Trust: a local backup holds the whole database, so its file is 0600 in 0700 directories — also where an
 * earlier version left the directory 0755. Real filesystem, the real local store.
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localStore } from '../../lib/backups/stores.js';

const modeOf = async (p: string) => (await stat(p)).mode & 0o777;

describe('security: local backup files', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'opsflow-sec-backups-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function write(dir: string, key: string, text: string) {
    const pending = localStore(dir).write(key);
    await pipeline(Readable.from([Buffer.from(text)]), pending.sink);
    await pending.commit();
  }

  it('a dump is written 0600 in 0700 directories', async () => {
    const dir = path.join(root, 'new');
    await write(dir, 'orders/2026-12-03.dump', 'data');
    expect((await modeOf(path.join(dir, 'orders/2026-12-03.dump'))).toString(8)).toBe('600');
    expect((await modeOf(path.join(dir, 'orders'))).toString(8)).toBe('700');
    expect((await modeOf(dir)).toString(8)).toBe('700');
  });

  it('directories an earlier version made 0755 are tightened on the next backup', async () => {
    const dir = path.join(root, 'old');
    await mkdir(path.join(dir, 'orders'), { recursive: true, mode: 0o755 });
    expect((await modeOf(path.join(dir, 'orders'))).toString(8)).toBe('755');
    await write(dir, 'orders/2026-12-04.dump', 'data');
    expect((await modeOf(path.join(dir, 'orders'))).toString(8)).toBe('700');
    expect((await modeOf(dir)).toString(8)).toBe('700');
    expect((await modeOf(path.join(dir, 'orders/2026-12-04.dump'))).toString(8)).toBe('600');
  });
});
