import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveApiKeys } from '../../lib/keys/bootstrap.js';
import { loadConfig } from '../../lib/config.js';

describe('API keys', () => {
  it('uses OPSFLOW_API_KEYS when set', async () => {
    const config = loadConfig({
      OPSFLOW_API_KEYS: 'k1-0123456789abcdef-0123456789abcdef,k2-0123456789abcdef-0123456789abcdef',
    });
    expect(await resolveApiKeys(config, { generate: true })).toEqual({
      keys: ['k1-0123456789abcdef-0123456789abcdef', 'k2-0123456789abcdef-0123456789abcdef'],
      source: 'env',
    });
  });

  it('the dev stack generates one key, stores it with mode 0600, and reuses it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keys-'));
    const config = loadConfig({ OPSFLOW_DATA_DIR: dir });
    const first = await resolveApiKeys(config, { generate: true });
    expect(first.source).toBe('generated');
    expect(first.keys[0]).toMatch(/^opsk_[\w-]{32}$/);
    expect((await stat(path.join(dir, 'api-key'))).mode & 0o777).toBe(0o600);
    const second = await resolveApiKeys(config, { generate: true });
    expect(second).toMatchObject({ keys: first.keys, source: 'file' });
    expect((await readFile(path.join(dir, 'api-key'), 'utf8')).trim()).toBe(first.keys[0]);
  });

  it('the API alone never invents a key', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keys-'));
    await expect(resolveApiKeys(loadConfig({ OPSFLOW_DATA_DIR: dir }), { generate: false })).rejects.toThrow(
      /OPSFLOW_API_KEYS/,
    );
  });

  it('ignores a key file too short to be a key', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keys-'));
    await writeFile(path.join(dir, 'api-key'), 'abc\n');
    await expect(resolveApiKeys(loadConfig({ OPSFLOW_DATA_DIR: dir }), { generate: false })).rejects.toThrow();
  });
});
