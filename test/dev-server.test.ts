/**
 * startDevServer and port clashes. The dev server picks its HTTP, metrics and internal ports itself, and one of
 * them can be taken before it binds it: CI saw `temporal server start-dev` exit with "address already in use" at
 * start. Such a start is tried again (the server picks new ports); a clash on the frontend port the caller chose
 * fails at once with the server's own message. The first case uses a wrapper that fails its first run the way the
 * server does, then runs the real server.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startDevServer } from '../scripts/dev-server.js';
import { freePort } from './global-setup.js';

describe('startDevServer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-dev-server-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function flakyBin(failures: number): Promise<{ bin: string; runs: () => Promise<number> }> {
    const counter = path.join(dir, `runs-${failures}`);
    const bin = path.join(dir, `temporal-flaky-${failures}`);
    await writeFile(counter, '');
    await writeFile(
      bin,
      `#!/bin/sh
echo run >> '${counter}'
if [ "$(wc -l < '${counter}')" -le ${failures} ]; then
  echo 'panic: listen tcp 127.0.0.1:41234: bind: address already in use' >&2
  echo 'goroutine 1 [running]:' >&2
  exit 2
fi
exec '${inject('temporalCliPath')}' "$@"
`,
    );
    await chmod(bin, 0o755);
    return { bin, runs: async () => (await readFile(counter, 'utf8')).trim().split('\n').length };
  }

  it('starts again when a port the server picked itself was taken', async () => {
    const { bin, runs } = await flakyBin(2);
    const server = await startDevServer({ bin, port: await freePort(), namespace: 'default' });
    try {
      expect(await runs()).toBe(3);
      const connection = await Connection.connect({ address: server.address });
      const ns = await connection.workflowService.describeNamespace({ namespace: 'default' });
      expect(ns.namespaceInfo?.name).toBe('default');
      await connection.close();
    } finally {
      await server.stop();
    }
  });

  it('gives up after three clashes, showing the panic', async () => {
    const { bin, runs } = await flakyBin(5);
    const error = await startDevServer({ bin, port: await freePort(), namespace: 'default' }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/exited with code 2:\npanic: listen tcp 127\.0\.0\.1:41234: bind/);
    expect(await runs()).toBe(3);
  });

  it('fails at once when the frontend port itself is taken', async () => {
    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
    try {
      const { bin, runs } = await flakyBin(0);
      const error = await startDevServer({ bin, port, namespace: 'default' }).catch((e: Error) => e);
      expect((error as Error).message).toContain(`can't set frontend port ${port}`);
      expect((error as Error).message).toContain('address already in use');
      expect(await runs()).toBe(1);
    } finally {
      holder.close();
    }
  });

  it('a server that dies at start for another reason is not started again', async () => {
    const bin = path.join(dir, 'temporal-broken');
    await writeFile(bin, `#!/bin/sh\necho "$@" >> '${bin}.runs'\necho 'unknown flag: --bogus' >&2\nexit 1\n`);
    await chmod(bin, 0o755);
    const error = await startDevServer({ bin, port: await freePort(), namespace: 'default' }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/exited with code 1:\nunknown flag/);
    expect((await readFile(`${bin}.runs`, 'utf8')).trim().split('\n')).toHaveLength(1);
  });
});
