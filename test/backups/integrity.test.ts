/**
 * What reaches the PostgreSQL tools: a tampered backup copy never reaches pg_restore (its bytes are checked
 * against the catalogue first, and pg_restore reads the very file that was checked), and the database
 * password never appears in a tool's argv. PG_BIN_DIR points at stand-ins that write down every call — and
 * what `ps` shows at that moment — then run the real tool.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKUP_WORKFLOW, backupWorkflowId, type RestoreResult } from '../../lib/backups/contract.js';
import type { backupDatabase } from '../../workflows/backups/workflow.js';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from '../helpers/harness.js';
import { databaseUrlOf, dropDatabase, queryIn, recreateDatabase, withAdmin } from '../helpers/databases.js';
import { saveHistory } from '../helpers/histories.js';
import { waitFor } from '../helpers/wait.js';

const execFileAsync = promisify(execFile);
const PASSWORD = 'pw-that-must-not-show-9f3c';

const sql = queryIn;

describe('backup integrity at the tool boundary', () => {
  let h: Harness;
  let workers: TestWorkers;
  let bin: string;
  const log = () => readFile(path.join(bin, 'calls.log'), 'utf8').catch(() => '');
  const source = `opsflow_int_src_${process.pid}`;
  const evil = `opsflow_int_evil_${process.pid}`;
  const target = `${source}_restore_1`;

  beforeAll(async () => {
    await recreateDatabase(source);
    await recreateDatabase(evil);
    await dropDatabase(target);
    await sql(
      source,
      `CREATE TABLE accounts (id serial PRIMARY KEY); INSERT INTO accounts SELECT FROM generate_series(1, 50);`,
    );
    // What an attacker would put in the store: a valid dump whose SQL leaves a marker table.
    await sql(evil, `CREATE TABLE tampered_marker (x int); INSERT INTO tampered_marker VALUES (1);`);
    bin = await mkdtemp(path.join(os.tmpdir(), 'opsflow-pgbin-'));
    for (const tool of ['pg_dump', 'pg_dumpall', 'pg_restore']) {
      const file = path.join(bin, tool);
      await writeFile(
        file,
        `#!/bin/sh
{ echo "== ${tool} $*"; echo "PGPASSWORD set: \${PGPASSWORD:+yes}"; ps -eo args; } >> "${bin}/calls.log"
# A dump that hangs (a huge database, a stuck server), while the file "slow" exists.
case "${tool} $*" in "pg_dump "*--snapshot*) [ -f "${bin}/slow" ] && { echo $$ > "${bin}/slow.pid"; exec sleep 300; } ;; esac
exec ${tool} "$@"
`,
      );
      await chmod(file, 0o755);
    }
    // The password is in the configured URL (this server trusts local connections, so any password works).
    const withPassword = new URL(databaseUrlOf(source));
    withPassword.password = PASSWORD;
    h = await createHarness({ BACKUP_DATABASE_URLS: withPassword.toString(), PG_BIN_DIR: bin });
    workers = await startWorkers(h, ['backups']);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await Promise.all([dropDatabase(source), dropDatabase(evil), dropDatabase(target)]);
    await rm(bin, { recursive: true, force: true });
  });

  it('ps during a backup shows no password: pg_dump, pg_dumpall and pg_restore get it through PGPASSWORD', async () => {
    const backup = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(source, new Date()),
      args: [{ database: source }],
    });
    expect(backup.status, backup.reason).toBe('verified');
    const calls = await log();
    expect(calls).toMatch(/== pg_dump .*--dbname=postgres/);
    expect(calls).toMatch(/== pg_dumpall --globals-only --no-role-passwords --dbname=postgres/);
    expect(calls).toMatch(/== pg_restore /);
    expect(calls).toMatch(/PGPASSWORD set: yes/);
    expect(calls).not.toContain(PASSWORD);
  });

  it('a tampered copy never reaches pg_restore: the restore fails and the marker table appears nowhere', async () => {
    const backup = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(source, new Date()),
      args: [{ database: source }],
    });
    expect(backup.status).toBe('verified');
    // Replace the stored copy with the attacker's dump; the catalogue still has the real sha256.
    const file = path.join(h.config.backups.dir, backup.locations[0]!.key);
    const { stdout } = await execFileAsync('pg_dump', ['--format=custom', `--dbname=${databaseUrlOf(evil)}`], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    });
    await writeFile(file, stdout);
    await writeFile(path.join(bin, 'calls.log'), '');

    const res = await testApp(h).request(`/v1/backups/${encodeURIComponent(backup.id)}/restore`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ targetDatabase: target, confirm: target }),
    });
    expect(res.status).toBe(202);
    const { workflowId } = (await res.json()) as { workflowId: string };
    const result = (await h.client.workflow.getHandle(workflowId).result()) as RestoreResult;
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/local copy differs from the catalog .*sha256 mismatch.*nothing was restored/);
    expect(await log()).not.toMatch(/== pg_restore/);
    const marked = await withAdmin((a) =>
      a.query('SELECT datname FROM pg_database WHERE datname LIKE $1', [`opsflow_int_%_${process.pid}%`]),
    );
    for (const { datname } of marked.rows as { datname: string }[]) {
      if (datname === evil) continue;
      const found = await sql(datname, `SELECT to_regclass('public.tampered_marker') AS t`);
      expect(found, datname).toEqual([{ t: null }]);
    }
    expect(marked.rows.map((r: { datname: string }) => r.datname)).not.toContain(target);
    // The checked copy was a private temporary file, removed afterwards.
    const tmp = await readFile(path.join(h.config.dataDir, 'tmp'), 'utf8').catch(
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(tmp).toBe('EISDIR');
    const left = await execFileAsync('find', [path.join(h.config.dataDir, 'tmp'), '-type', 'f']);
    expect(left.stdout).toBe('');
  });

  it('one backup per database at a time: the API answers 409 naming the running one, other starts fail clearly', async () => {
    await writeFile(path.join(bin, 'slow'), '');
    await rm(path.join(bin, 'slow.pid'), { force: true });
    const post = () =>
      testApp(h).request('/v1/backups', {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ database: source }),
      });
    let first: string | undefined;
    try {
      const res = await post();
      expect(res.status, await res.clone().text()).toBe(202);
      first = ((await res.json()) as { id: string }).id;
      await waitFor(
        () => readFile(path.join(bin, 'slow.pid'), 'utf8').catch(() => ''),
        (p) => p.trim() !== '',
        30_000,
      );
      const second = await post();
      expect(second.status, await second.clone().text()).toBe(409);
      expect(await second.json()).toMatchObject({ error: { code: 'conflict', details: { runningBackupId: first } } });
      // A start that does not come through the API (a schedule, a pre-deploy backup) meets the lock the dump
      // holds in the database, and fails at once saying why, without dumping.
      const other = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
        taskQueue: h.queues.backups,
        workflowId: backupWorkflowId(source, new Date()),
        args: [{ database: source, stepRetry: { maximumAttempts: 1 } }],
      });
      expect(other.status).toBe('failed');
      expect(other.reason).toMatch(new RegExp(`another backup of ${source} is dumping now`));
    } finally {
      if (first) await h.client.workflow.getHandle(first).cancel();
      if (first) await h.client.workflow.getHandle(first).result();
      // The cancelled dump lets go of the database's lock once its activity hears of the cancellation.
      await waitFor(
        () =>
          withAdmin((a) =>
            a.query(
              `SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
               WHERE l.locktype = 'advisory' AND d.datname = $1`,
              [source],
            ),
          ).then((r) => r.rowCount),
        (n) => n === 0,
        30_000,
      );
      await rm(path.join(bin, 'slow'), { force: true });
      await rm(path.join(bin, 'slow.pid'), { force: true });
    }
  });

  it('a cancelled backup kills its pg_dump and is recorded as failed (canceled), not left running', async () => {
    await writeFile(path.join(bin, 'slow'), '');
    try {
      const id = backupWorkflowId(source, new Date());
      const handle = await h.client.workflow.start<typeof backupDatabase>(BACKUP_WORKFLOW, {
        taskQueue: h.queues.backups,
        workflowId: id,
        args: [{ database: source }],
      });
      const pid = Number(
        await waitFor(
          () => readFile(path.join(bin, 'slow.pid'), 'utf8').catch(() => ''),
          (p) => p.trim() !== '',
          30_000,
        ),
      );
      await handle.cancel();
      const result = await handle.result();
      expect(result).toMatchObject({ status: 'failed', reason: 'canceled' });
      const { rows } = await h.pool.query<{ status: string; reason: string; finished_at: Date | null }>(
        'SELECT status, reason, finished_at FROM opsflow.backups WHERE id = $1',
        [id],
      );
      expect(rows[0]).toMatchObject({ status: 'failed', reason: 'canceled' });
      expect(rows[0]!.finished_at).not.toBeNull();
      // The dump process is killed: the activity hears of the cancellation at its next heartbeat (sent at
      // least every 5 s), long before the stand-in's 300 s are up.
      await waitFor(
        () => {
          try {
            process.kill(pid, 0);
            return true;
          } catch {
            return false;
          }
        },
        (alive) => !alive,
        15_000,
      );
      await saveHistory(id, 'backups/canceled.json');
    } finally {
      await rm(path.join(bin, 'slow'), { force: true });
    }
  });
});
