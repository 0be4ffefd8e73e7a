/**
 * BACKUP_JOBS > 1: pg_dump's directory format with that many jobs, stored as a tar of the directory (encrypted
 * like any copy when a key is set), verified and restored with pg_restore --jobs. Real PostgreSQL, pg_dump and
 * pg_restore, tar, the real Temporal server.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTarArchive } from '../../activities/backups/dump-process.js';
import { BACKUP_WORKFLOW, backupWorkflowId, type RestoreResult } from '../../lib/backups/contract.js';
import { loadConfig } from '../../lib/config.js';
import type { backupDatabase } from '../../workflows/backups/workflow.js';
import { authHeaders } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, queryIn, recreateDatabase } from '../helpers/databases.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';

const exec = promisify(execFile);
const source = `opsflow_par_src_${process.pid}`;
const targets = [1, 2].map((i) => `${source}_restore_${i}`);

async function backUp(h: Harness, stepRetry?: { maximumAttempts: number }) {
  return h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
    taskQueue: h.queues.backups,
    workflowId: backupWorkflowId(source, new Date()),
    args: [{ database: source, ...(stepRetry ? { stepRetry } : {}) }],
  });
}

describe('BACKUP_JOBS', () => {
  it('is a whole number from 1 to 32, 1 by default', () => {
    const base = { OPSFLOW_API_KEYS: 'jobs-config-key-0123456789abcdef-0123' };
    expect(loadConfig(base).backups.jobs).toBe(1);
    expect(loadConfig({ ...base, BACKUP_JOBS: '4' }).backups.jobs).toBe(4);
    for (const bad of ['0', '33', 'two', '1.5']) {
      expect(() => loadConfig({ ...base, BACKUP_JOBS: bad }), bad).toThrow(/BACKUP_JOBS/);
    }
  });
});

describe('parallel dumps and restores (BACKUP_JOBS=2)', () => {
  const harnesses: Harness[] = [];
  const running: TestWorkers[] = [];
  const start = async (env: Record<string, string>) => {
    const h = await createHarness({ BACKUP_DATABASE_URLS: databaseUrlOf(source), BACKUP_JOBS: '2', ...env });
    harnesses.push(h);
    running.push(await startWorkers(h, ['backups']));
    return h;
  };

  beforeAll(async () => {
    for (const t of targets) await dropDatabase(t);
    await recreateDatabase(source);
    await queryIn(
      source,
      `CREATE TABLE a (id serial PRIMARY KEY, v text);
       CREATE TABLE b (id serial PRIMARY KEY, v text);
       CREATE TABLE c (id serial PRIMARY KEY, v text);
       INSERT INTO a (v) SELECT md5(g::text) FROM generate_series(1, 20000) g;
       INSERT INTO b (v) SELECT md5(g::text) FROM generate_series(1, 15000) g;
       INSERT INTO c (v) SELECT md5(g::text) FROM generate_series(1, 10000) g;`,
    );
  });
  afterAll(async () => {
    for (const w of running) await w.stop();
    for (const h of harnesses) await h.close();
    for (const db of [source, ...targets]) await dropDatabase(db);
  });

  const restore = async (h: Harness, backupId: string, target: string) => {
    const res = await testApp(h).request(`/v1/backups/${encodeURIComponent(backupId)}/restore`, {
      method: 'POST',
      headers: authHeaders(),
      body: JSON.stringify({ targetDatabase: target, confirm: target }),
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { workflowId } = (await res.json()) as { workflowId: string };
    return (await h.client.workflow.getHandle(workflowId).result()) as RestoreResult;
  };
  const counts = async (db: string) =>
    queryIn<{ a: string; b: string; c: string }>(
      db,
      'SELECT (SELECT count(*) FROM a) AS a, (SELECT count(*) FROM b) AS b, (SELECT count(*) FROM c) AS c',
    );

  it('stores a directory dump as a tar, verifies it by a parallel restore, and restores it', async () => {
    const h = await start({});
    const backup = await backUp(h);
    expect(backup.status, backup.reason).toBe('verified');
    expect(backup.verification?.tables.map((t) => [t.table, t.restored])).toEqual([
      ['public.a', 20000],
      ['public.b', 15000],
      ['public.c', 10000],
    ]);
    const view = (await (
      await testApp(h).request(`/v1/backups/${encodeURIComponent(backup.id)}`, { headers: authHeaders() })
    ).json()) as { format: string };
    expect(view.format).toBe('directory');
    // The stored copy is a tar of pg_dump's directory: its table of contents and one file per table.
    const stored = path.join(h.config.backups.dir, backup.locations[0]!.key);
    expect(await isTarArchive(stored)).toBe(true);
    const { stdout } = await exec('tar', ['--list', `--file=${stored}`]);
    const names = stdout.split('\n').filter(Boolean);
    expect(names).toContain('./toc.dat');
    expect(names.filter((n) => /^\.\/\d+\.dat(\.gz)?$/.test(n)).length).toBeGreaterThanOrEqual(3);
    // Nothing of the dump's temporary directory is left.
    expect(await readdir(path.join(h.dataDir, 'tmp'))).toEqual([]);

    const result = await restore(h, backup.id, targets[0]!);
    expect(result.status, result.reason).toBe('restored');
    expect(await counts(targets[0]!)).toEqual([{ a: '20000', b: '15000', c: '10000' }]);
  });

  it('encrypts the tar like any copy, and restores it', async () => {
    const h = await start({ BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
    const backup = await backUp(h);
    expect(backup.status, backup.reason).toBe('verified');
    const stored = path.join(h.config.backups.dir, backup.locations[0]!.key);
    expect(await isTarArchive(stored)).toBe(false); // what is stored is ciphertext
    const result = await restore(h, backup.id, targets[1]!);
    expect(result.status, result.reason).toBe('restored');
    expect(await counts(targets[1]!)).toEqual([{ a: '20000', b: '15000', c: '10000' }]);
  });

  it('a directory dump that fails ends the run failed with pg_dump’s words, leaving no temporary files', async () => {
    // pg_dump stood in for: it writes part of a directory and fails; the other tools are the installed ones.
    const bin = await mkdtemp(path.join(os.tmpdir(), 'par-pg-'));
    for (const tool of ['pg_restore', 'psql', 'pg_dumpall']) {
      await writeFile(path.join(bin, tool), `#!/bin/sh\nexec ${tool} "$@"\n`, { mode: 0o755 });
    }
    await writeFile(
      path.join(bin, 'pg_dump'),
      [
        '#!/bin/sh',
        'if [ "$1" = "--version" ]; then exec pg_dump --version; fi',
        'for a in "$@"; do case "$a" in --file=*) d="${a#--file=}";; esac; done',
        'mkdir -p "$d" && echo partial > "$d/toc.dat"',
        'echo "pg_dump: error: could not open file: Disk quota exceeded" >&2',
        'exit 1',
      ].join('\n'),
      { mode: 0o755 },
    );
    const h = await start({ PG_BIN_DIR: bin });
    const backup = await backUp(h, { maximumAttempts: 1 });
    expect(backup.status).toBe('failed');
    expect(backup.reason).toMatch(/pg_dump exited 1: pg_dump: error: could not open file: Disk quota exceeded/);
    expect(await readdir(path.join(h.dataDir, 'tmp'))).toEqual([]);
    const local = await readdir(path.join(h.config.backups.dir, source)).catch(() => []);
    expect(local).toEqual([]);
  });
});
