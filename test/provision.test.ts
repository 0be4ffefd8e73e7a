import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { provisionPromtool, PROMTOOL_VERSION } from '../scripts/provision-promtool.js';
import { provisionTemporalCli, TEMPORAL_CLI_VERSION } from '../scripts/provision-temporal.js';

async function fakeCli(dir: string, version: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'temporal');
  await writeFile(file, `#!/bin/sh\necho "temporal version ${version} (Server 1.29.1, UI 2.42.1)"\n`);
  await chmod(file, 0o755);
  return file;
}

describe('Temporal CLI provisioning', () => {
  const quiet = () => undefined;

  it('prefers TEMPORAL_CLI_PATH, then PATH, then the cached build', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'cli-'));
    const explicit = await fakeCli(path.join(root, 'explicit'), '9.9.9');
    const onPath = await fakeCli(path.join(root, 'bin'), '8.8.8');
    const cached = await fakeCli(path.join(root, 'cache'), TEMPORAL_CLI_VERSION);
    const pathEnv = `/usr/bin:/bin:${path.dirname(onPath)}`;
    expect(await provisionTemporalCli({ cliPath: explicit, pathEnv, cachePath: cached, say: quiet })).toBe(explicit);
    expect(await provisionTemporalCli({ pathEnv, cachePath: cached, say: quiet })).toBe(onPath);
    expect(await provisionTemporalCli({ pathEnv: '/usr/bin:/bin', cachePath: cached, say: quiet })).toBe(cached);
  });

  it('rejects a TEMPORAL_CLI_PATH that is not an executable instead of falling back', async () => {
    await expect(provisionTemporalCli({ cliPath: '/nonexistent/temporal', say: quiet })).rejects.toThrow(
      /TEMPORAL_CLI_PATH=\/nonexistent\/temporal is not an executable/,
    );
  });

  it('without a CLI and without Go, says how to install one', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'cli-'));
    const err = await provisionTemporalCli({
      pathEnv: root, // neither temporal nor go here
      cachePath: path.join(root, '.tools', 'temporal'),
      say: quiet,
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/Go is not installed/);
    expect((err as Error).message).toMatch(/TEMPORAL_CLI_PATH/);
    expect((err as Error).message).toMatch(/TEMPORAL_ADDRESS/);
  });

  it('does not trust a cached build of another version', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'cli-'));
    const stale = await fakeCli(path.join(root, 'cache'), '0.0.0-DEV');
    const messages: string[] = [];
    await expect(
      provisionTemporalCli({ pathEnv: root, cachePath: stale, say: (m) => messages.push(m) }),
    ).rejects.toThrow(/Go is not installed/);
    expect(messages.join('\n')).toMatch(/expected 1\.5\.1: rebuilding/);
  });
});

describe('promtool provisioning', () => {
  const quiet = () => undefined;

  it('takes promtool from PATH, else a cached build of the pinned version; without either and Go, says how', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'promtool-'));
    const fake = async (dir: string, version: string) => {
      await mkdir(dir, { recursive: true });
      const file = path.join(dir, 'promtool');
      await writeFile(file, `#!/bin/sh\necho "promtool, version ${version} (branch: , revision: unknown)"\n`);
      await chmod(file, 0o755);
      return file;
    };
    const onPath = await fake(path.join(root, 'bin'), '2.42.0');
    const cached = await fake(path.join(root, 'cache'), PROMTOOL_VERSION);
    expect(await provisionPromtool({ pathEnv: `${path.dirname(onPath)}:/bin`, cachePath: cached, say: quiet })).toBe(
      onPath,
    );
    expect(await provisionPromtool({ pathEnv: root, cachePath: cached, say: quiet })).toBe(cached);
    const err = await provisionPromtool({
      pathEnv: root,
      cachePath: path.join(root, 'none', 'promtool'),
      say: quiet,
    }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/promtool .* was not found and Go is not installed/);
    expect((err as Error).message).toMatch(/PROMTOOL_PATH/);
    expect((err as Error).message).toMatch(/apt-get install prometheus/);
  });
});
