/**
 * API keys come from OPSFLOW_API_KEYS. Without it, the dev stack generates one key and keeps it in
 * `<data dir>/api-key` (mode 0600) so it survives restarts; `npm run api` alone reuses that file but
 * never invents a key.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import { strongKey } from './strength.js';

export interface ResolvedKeys {
  keys: string[];
  source: 'env' | 'file' | 'generated';
  file?: string;
}

export async function resolveApiKeys(config: Config, opts: { generate: boolean }): Promise<ResolvedKeys> {
  if (config.apiKeys) return { keys: config.apiKeys, source: 'env' };
  const file = path.resolve(config.dataDir, 'api-key');
  try {
    const key = (await readFile(file, 'utf8')).trim();
    if (strongKey(key)) return { keys: [key], source: 'file', file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!opts.generate) {
    throw new Error(`OPSFLOW_API_KEYS is not set and ${file} does not exist: set OPSFLOW_API_KEYS`);
  }
  const key = `opsk_${randomBytes(24).toString('base64url')}`;
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') return; // another process won the race; use its key
    throw err;
  });
  await chmod(file, 0o600);
  const stored = (await readFile(file, 'utf8')).trim();
  return { keys: [stored], source: stored === key ? 'generated' : 'file', file };
}
