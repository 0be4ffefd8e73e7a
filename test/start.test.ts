/**
 * `npm start` as a user runs it: the dev-stack process provisions nothing (the CLI is given), starts the
 * Temporal dev server, creates the database, runs the workers and the API, prints where they are and the API
 * key, does real work, and stops cleanly on SIGTERM — the server included. A second start reuses the key.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from './global-setup.js';
import { databaseUrlOf, dropDatabase } from './helpers/databases.js';
import { spawnEntry, type Child } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

describe('npm start', () => {
  const db = `opsflow_start_${process.pid}`;
  let dataDir: string;
  beforeAll(async () => {
    await dropDatabase(db);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-start-'));
  });
  afterAll(async () => {
    await dropDatabase(db);
    await rm(dataDir, { recursive: true, force: true });
  });

  function start(ports: { api: number; temporal: number; ui: number }): Child {
    return spawnEntry('scripts/dev-stack.ts', {
      DATABASE_URL: databaseUrlOf(db),
      OPSFLOW_DATA_DIR: dataDir,
      OPSFLOW_API_KEYS: '',
      OPSFLOW_ENCRYPTION_KEY: '',
      TEMPORAL_ADDRESS: '',
      TEMPORAL_CLI_PATH: inject('temporalCliPath'),
      PORT: String(ports.api),
      TEMPORAL_DEV_PORT: String(ports.temporal),
      TEMPORAL_UI_PORT: String(ports.ui),
      OPSFLOW_TASK_QUEUE_PREFIX: `start-${process.pid}`,
      LOG_LEVEL: 'warn',
    });
  }
  const running = (child: Child) =>
    waitFor(
      () => child.output(),
      (out) => out.includes('opsflow is running') || child.process.exitCode !== null,
      120_000,
    );
  const closed = (url: string) =>
    fetch(url).then(
      () => false,
      () => true,
    );

  it('starts everything, prints the API, the UI and a new key, does work, and stops cleanly', async () => {
    const ports = { api: await freePort(), temporal: await freePort(), ui: await freePort() };
    let key: string | undefined;
    let encryptionKey = '';
    const child = start(ports);
    try {
      const out = await running(child);
      expect(out, out).toContain('opsflow is running');
      const base = /API:\s+(http:\/\/\S+)/.exec(out)?.[1];
      expect(base).toMatch(new RegExp(`^http://(localhost|127\\.0\\.0\\.1):${ports.api}$`));
      expect(out).toContain(`Temporal UI: http://127.0.0.1:${ports.ui}`);
      key = /API key:\s+(\S+)\s+\(stored in .*, new\)/.exec(out)?.[1];
      expect(key).toBeDefined();
      expect((await fetch(`${base!}/health`)).status).toBe(200);
      expect((await fetch(`${base!}/v1/system-check`)).status).toBe(401);
      // The key that encrypts webhook secrets was made too, readable by its owner only.
      const keyFile = await stat(path.join(dataDir, 'encryption-key'));
      expect(keyFile.mode & 0o777).toBe(0o600);
      encryptionKey = await readFile(path.join(dataDir, 'encryption-key'), 'utf8');
      expect(Buffer.from(encryptionKey.trim(), 'base64')).toHaveLength(32);
      // Real work through the stack: a system check, run as a workflow by its workers.
      const res = await fetch(`${base!}/v1/system-check`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(['ok', 'degraded']).toContain(((await res.json()) as { status: string }).status);
      // The Temporal Web UI answers.
      expect((await fetch(`http://127.0.0.1:${ports.ui}/`)).status).toBe(200);
      // The console: the printed key logs in, and its workflow links point at this dev server's UI.
      expect(out).toContain(`Console:     ${base!}/console`);
      const login = await fetch(`${base!}/console/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ key: key! }).toString(),
        redirect: 'manual',
      });
      expect(login.status).toBe(303);
      const cookie = /opsflow_session=[^;]+/.exec(login.headers.get('set-cookie') ?? '')![0];
      const schedules = await fetch(`${base!}/console/schedules`, { headers: { cookie } });
      expect(schedules.status).toBe(200);
      expect(await schedules.text()).toContain(`href="http://127.0.0.1:${ports.ui}/namespaces/default/schedules/`);

      child.process.kill('SIGTERM');
      await waitFor(
        () => child.process.exitCode,
        (code) => code !== null,
        60_000,
      );
      expect(child.process.exitCode, child.output()).toBe(0);
      // The API and the dev server it started are gone with it.
      expect(await closed(`${base!}/health`)).toBe(true);
      expect(await closed(`http://127.0.0.1:${ports.ui}/`)).toBe(true);
    } finally {
      await child.kill('SIGKILL');
    }

    // A second start finds the database and the key it made.
    const againPorts = { api: await freePort(), temporal: await freePort(), ui: await freePort() };
    const again = start(againPorts);
    try {
      const out = await running(again);
      expect(out).toContain(`API key:     ${key!}  (stored in`);
      expect(out).not.toContain(', new)');
      expect(await readFile(path.join(dataDir, 'encryption-key'), 'utf8')).toBe(encryptionKey);

      // The dev server dies: the stack restarts it on its saved state, and work goes through again.
      const server = execFileSync('pgrep', ['-f', `start-dev --ip 127.0.0.1 --port ${againPorts.temporal} `], {
        encoding: 'utf8',
      }).trim();
      expect(server).toMatch(/^\d+$/);
      process.kill(Number(server), 'SIGKILL');
      await waitFor(
        () => again.output(),
        (o) => o.includes('Temporal dev server restarted') || again.process.exitCode !== null,
        60_000,
      );
      expect(again.output()).toContain('restarting it on its saved state');
      expect(again.process.exitCode).toBeNull();
      const base = `http://127.0.0.1:${againPorts.api}`;
      const check = await waitFor(
        () => fetch(`${base}/v1/system-check`, { headers: { authorization: `Bearer ${key!}` } }).then((r) => r.status),
        (status) => status === 200,
        60_000,
      );
      expect(check).toBe(200);
    } finally {
      again.process.kill('SIGTERM');
      await waitFor(
        () => again.process.exitCode,
        (code) => code !== null,
        60_000,
      );
      await again.kill('SIGKILL');
    }
  }, 300_000);
});
