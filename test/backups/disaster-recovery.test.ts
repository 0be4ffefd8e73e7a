/**
 * Disaster recovery: a backup restored onto another PostgreSQL server (RESTORE_SERVERS) — a second cluster made
 * with pg_createcluster, sharing nothing with the source's — with the source's roles first (created if missing,
 * never altered if present), then the database with its owners and grants, counts compared; and the monthly DR
 * drill with its RTO against RTO_TARGET. Real PostgreSQL servers, pg_dump/pg_restore, the real Temporal server.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BACKUP_WORKFLOW,
  backupWorkflowId,
  DR_DRILL_WORKFLOW,
  type BackupResult,
  type RestoreResult,
} from '../../lib/backups/contract.js';
import { planGlobals } from '../../lib/backups/globals.js';
import { loadConfig } from '../../lib/config.js';
import { quoteIdent } from '../../lib/db.js';
import { declareSchedules } from '../../lib/schedules/declarations.js';
import { taskQueues } from '../../lib/task-queues.js';
import type { backupDatabase } from '../../workflows/backups/workflow.js';
import type { backupDrDrill } from '../../workflows/backups/restore.js';
import { authHeaders } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, queryIn, withAdmin } from '../helpers/databases.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { saveHistory } from '../helpers/histories.js';
import { startSecondCluster, type SecondCluster } from '../helpers/second-cluster.js';

const DR_PORT = 5439;

describe('a globals file read into what a DR restore applies', () => {
  const file = [
    '--',
    '-- PostgreSQL database cluster dump',
    '--',
    '\\restrict abc123',
    'SET default_transaction_read_only = off;',
    "SET client_encoding = 'UTF8';",
    'CREATE ROLE app_owner;',
    'ALTER ROLE app_owner WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;',
    "COMMENT ON ROLE app_owner IS 'owns the app';",
    'CREATE ROLE "Mixed ""Case""";',
    'ALTER ROLE "Mixed ""Case""" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;',
    "ALTER ROLE app_owner SET search_path TO 'app';",
    "ALTER ROLE app_owner IN DATABASE app SET work_mem TO '64MB';",
    "CREATE TABLESPACE fast OWNER app_owner LOCATION '/mnt/fast';",
    'GRANT "Mixed ""Case""" TO app_owner GRANTED BY postgres;',
    'GRANT app_owner TO bob WITH INHERIT TRUE GRANTED BY postgres;',
    '\\unrestrict abc123',
    '',
  ].join('\n');

  it('groups each role with its statements, keeps memberships without their grantor, skips what is not portable', () => {
    const plan = planGlobals(file);
    expect(plan.roles).toEqual([
      {
        name: 'app_owner',
        statements: [
          'CREATE ROLE app_owner;',
          'ALTER ROLE app_owner WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;',
          "COMMENT ON ROLE app_owner IS 'owns the app';",
          "ALTER ROLE app_owner SET search_path TO 'app';",
        ],
      },
      {
        name: 'Mixed "Case"',
        statements: [
          'CREATE ROLE "Mixed ""Case""";',
          'ALTER ROLE "Mixed ""Case""" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;',
        ],
      },
    ]);
    expect(plan.memberships).toEqual([
      { role: 'Mixed "Case"', member: 'app_owner', statement: 'GRANT "Mixed ""Case""" TO app_owner;' },
      { role: 'app_owner', member: 'bob', statement: 'GRANT app_owner TO bob WITH INHERIT TRUE;' },
    ]);
    // A per-database setting (its database may not exist yet) and a tablespace (its path is the old machine's).
    expect(plan.skipped).toEqual([
      "ALTER ROLE app_owner IN DATABASE app SET work_mem TO '64MB';",
      "CREATE TABLESPACE fast OWNER app_owner LOCATION '/mnt/fast';",
    ]);
  });

  it('an empty or foreign file plans nothing', () => {
    expect(planGlobals('')).toEqual({ roles: [], memberships: [], skipped: [] });
    expect(planGlobals('DROP DATABASE app;').skipped).toEqual(['DROP DATABASE app;']);
  });
});

describe('RESTORE_SERVERS and RTO_TARGET', () => {
  const base = { OPSFLOW_API_KEYS: 'dr-config-key-0123456789abcdef-012345' };
  it('names each server; its URL points at the maintenance database', () => {
    const c = loadConfig({
      ...base,
      RESTORE_SERVERS: 'dr=postgres://backup:pw@dr-db:5432/app?sslmode=require; eu-2=postgresql://u@eu:6432/x',
      RTO_TARGET: '2h',
    });
    expect(c.backups.restoreServers).toEqual([
      { name: 'dr', url: 'postgres://backup:pw@dr-db:5432/postgres?sslmode=require' },
      { name: 'eu-2', url: 'postgresql://u@eu:6432/postgres' },
    ]);
    expect(c.backups.rtoTargetMs).toBe(2 * 3600_000);
    expect(loadConfig(base).backups.rtoTargetMs).toBe(4 * 3600_000);
  });

  it.each([
    ['DR=postgres://u@h/postgres', /RESTORE_SERVERS: each entry is name=/],
    ['dr=http://u:secret@h/postgres', /RESTORE_SERVERS: dr: must start with postgres:\/\//],
    ['dr=not a url', /RESTORE_SERVERS: dr: not a URL/],
    ['dr=postgres://a@h/p;dr=postgres://b@h/p', /RESTORE_SERVERS: dr is named twice/],
  ])('refuses %s, never echoing the URL', (value, problem) => {
    expect(() => loadConfig({ ...base, RESTORE_SERVERS: value })).toThrow(problem);
    try {
      loadConfig({ ...base, RESTORE_SERVERS: value });
    } catch (err) {
      expect((err as Error).message).not.toContain('secret');
    }
  });

  it('refuses an RTO_TARGET that is not a duration', () => {
    expect(() => loadConfig({ ...base, RTO_TARGET: 'soon' })).toThrow(/RTO_TARGET/);
  });

  it('declares the monthly DR drill only with a restore server, onto the first one, held to RTO_TARGET', () => {
    const queues = taskQueues('t');
    const without = declareSchedules(loadConfig(base), queues);
    expect(without.some((s) => s.id === 'opsflow:dr-drill')).toBe(false);
    const config = loadConfig({
      ...base,
      BACKUP_DATABASE_URLS: 'postgres://u@db/app,postgres://u@db/billing',
      RESTORE_SERVERS: 'dr=postgres://u@dr/postgres;other=postgres://u@o/postgres',
      RTO_TARGET: '90m',
    });
    const drill = declareSchedules(config, queues).find((s) => s.id === 'opsflow:dr-drill');
    expect(drill).toMatchObject({
      workflowType: DR_DRILL_WORKFLOW,
      args: [{ databases: ['app', 'billing'], server: 'dr', rtoTargetMs: 90 * 60_000 }],
      taskQueue: queues.backups,
    });
  });
});

describe('a restore onto another server, and the DR drill', () => {
  const tag = `${process.pid}`;
  const source = `opsflow_dr_src_${tag}`;
  const owner = `opsflow_dr_owner_${tag}`;
  const group = `opsflow_dr_group_${tag}`;
  const shared = `opsflow_dr_shared_${tag}`;
  let dr: SecondCluster;
  let h: Harness;
  let workers: TestWorkers;
  let backup: BackupResult;

  beforeAll(async () => {
    dr = await startSecondCluster('opsflow_dr_test', DR_PORT);
    await dropDatabase(source);
    await withAdmin(async (a) => {
      for (const r of [owner, group, shared]) await a.query(`DROP ROLE IF EXISTS ${quoteIdent(r)}`);
      await a.query(`CREATE ROLE ${quoteIdent(group)} NOLOGIN`);
      await a.query(`CREATE ROLE ${quoteIdent(owner)} LOGIN CREATEDB IN ROLE ${quoteIdent(group)}`);
      await a.query(`CREATE ROLE ${quoteIdent(shared)} LOGIN CREATEDB`);
      await a.query(`CREATE DATABASE ${quoteIdent(source)}`);
    });
    await queryIn(
      source,
      `CREATE SCHEMA app AUTHORIZATION ${quoteIdent(owner)};
       CREATE TABLE app.orders (id serial PRIMARY KEY, total numeric NOT NULL);
       INSERT INTO app.orders (total) SELECT g FROM generate_series(1, 500) g;
       ALTER TABLE app.orders OWNER TO ${quoteIdent(owner)};
       GRANT SELECT ON app.orders TO ${quoteIdent(shared)};`,
    );
    // On the DR server the shared role exists already, and differently: it must stay as it is.
    await dr.query(`CREATE ROLE ${quoteIdent(shared)} NOLOGIN NOCREATEDB`);
    h = await createHarness({
      BACKUP_DATABASE_URLS: databaseUrlOf(source),
      RESTORE_SERVERS: `dr=${dr.url}`,
      BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    });
    workers = await startWorkers(h, ['backups']);
    backup = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(source, new Date()),
      args: [{ database: source }],
    });
    expect(backup.status, backup.reason).toBe('verified');
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await dr?.drop();
    await dropDatabase(source);
    await withAdmin(async (a) => {
      for (const r of [owner, shared, group]) await a.query(`DROP ROLE IF EXISTS ${quoteIdent(r)}`);
    });
  });

  const restore = async (body: Record<string, unknown>) => {
    const res = await testApp(h).request(`/v1/backups/${encodeURIComponent(backup.id)}/restore`, {
      method: 'POST',
      headers: authHeaders(),
      body: JSON.stringify(body),
    });
    return {
      status: res.status,
      body: (await res.json()) as Record<string, unknown> & { error?: { message: string } },
    };
  };
  const run = async (body: Record<string, unknown>) => {
    const res = await restore(body);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const { id, workflowId } = res.body as { id: string; workflowId: string };
    return { id, workflowId, result: (await h.client.workflow.getHandle(workflowId).result()) as RestoreResult };
  };
  const roleOn = async (role: string) =>
    (
      await dr.query<{ rolcanlogin: boolean; rolcreatedb: boolean }>(
        'SELECT rolcanlogin, rolcreatedb FROM pg_roles WHERE rolname = $1',
        [role],
      )
    )[0];
  const drDatabases = async () =>
    (await dr.query<{ datname: string }>('SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1')).map(
      (r) => r.datname,
    );

  it('refuses an unknown server, a database never restored, a non-empty target — and starts nothing', async () => {
    const before = await drDatabases();
    const unknown = await restore({ targetDatabase: source, confirm: source, server: 'nowhere' });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error?.message).toBe('server nowhere is not in RESTORE_SERVERS (dr)');
    const reserved = await restore({ targetDatabase: 'postgres', confirm: 'postgres', server: 'dr' });
    expect(reserved.status).toBe(422);
    expect(reserved.body.error?.message).toMatch(/postgres is never a restore target/);
    const offList = await restore({ targetDatabase: 'billing', confirm: 'billing', server: 'dr' });
    expect(offList.status).toBe(422);
    expect(offList.body.error?.message).toMatch(/RESTORE_TARGETS allows/);
    await dr.query('CREATE DATABASE ' + quoteIdent(`${source}_restore_busy`));
    await dr.query('CREATE TABLE t (id int)', [], `${source}_restore_busy`);
    const busy = await restore({
      targetDatabase: `${source}_restore_busy`,
      confirm: `${source}_restore_busy`,
      server: 'dr',
    });
    expect(busy.status).toBe(409);
    await dr.query('DROP DATABASE ' + quoteIdent(`${source}_restore_busy`));
    expect(await drDatabases()).toEqual(before);
    expect(await roleOn(owner)).toBeUndefined();
  });

  it("creates the source's missing roles first, leaves present ones alone, and restores owners and grants", async () => {
    const { id, workflowId, result } = await run({ targetDatabase: source, confirm: source, server: 'dr' });
    expect(result.status, result.reason).toBe('restored');
    await saveHistory(workflowId, 'backups/dr-restore.json');
    expect(result.server).toBe('dr');
    expect(result.globals?.rolesCreated).toEqual(expect.arrayContaining([owner, group]));
    expect(result.globals?.rolesPresent).toEqual(expect.arrayContaining(['postgres', shared]));
    expect(result.globals?.rolesCreated).not.toContain(shared);
    expect(result.verification?.ownersNotKept).toBeUndefined();
    expect(result.verification?.tables).toEqual([{ table: 'app.orders', expected: 500, restored: 500 }]);

    // Made as on the source (login, createdb, its membership); the present one kept exactly as it was.
    expect(await roleOn(owner)).toEqual({ rolcanlogin: true, rolcreatedb: true });
    expect(await roleOn(shared)).toEqual({ rolcanlogin: false, rolcreatedb: false });
    const member = await dr.query<{ m: boolean }>('SELECT pg_has_role($1, $2, $3) AS m', [owner, group, 'MEMBER']);
    expect(member).toEqual([{ m: true }]);
    const table = await dr.query<{ owner: string; readable: boolean; n: string }>(
      `SELECT tableowner AS owner, has_table_privilege($1, 'app.orders', 'SELECT') AS readable,
              (SELECT count(*) FROM app.orders) AS n
         FROM pg_tables WHERE tablename = 'orders'`,
      [shared],
      source,
    );
    expect(table).toEqual([{ owner, readable: true, n: '500' }]);
    // The source's own server got nothing new, and the staging copy on the DR server is gone.
    expect((await drDatabases()).filter((d) => d.startsWith(`${source}_r`))).toEqual([]);
    const onSource = await withAdmin((a) =>
      a.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${source}_r%`]),
    );
    expect(onSource.rows).toEqual([]);

    const answer = (await (
      await testApp(h).request(`/v1/restores/${encodeURIComponent(id)}`, { headers: authHeaders() })
    ).json()) as { server: string; globals: { rolesCreated: string[] } };
    expect(answer.server).toBe('dr');
    expect(answer.globals.rolesCreated).toEqual(expect.arrayContaining([owner, group]));
  });

  it('fails before any database is made when the stored globals differ from the catalogue', async () => {
    const { rows } = await h.pool.query<{ key: string }>(
      "SELECT globals->>'key' AS key FROM opsflow.backups WHERE id = $1",
      [backup.id],
    );
    const file = path.join(h.config.backups.dir, rows[0]!.key);
    const original = await readFile(file);
    const target = `${source}_restore_2`;
    await writeFile(file, Buffer.concat([original, Buffer.from('\nCREATE ROLE intruder SUPERUSER;\n')]));
    try {
      const { result } = await run({ targetDatabase: target, confirm: target, server: 'dr' });
      expect(result.status).toBe('failed');
      expect(result.reason).toMatch(/the backup's globals could not be read: local: differs from the catalogue/);
      expect(await drDatabases()).not.toContain(target);
      expect(await roleOn('intruder')).toBeUndefined();
    } finally {
      await writeFile(file, original);
    }
  });

  it('the DR drill restores onto the DR server, reports its RTO, and fails when slower than RTO_TARGET', async () => {
    const drill = (rtoTargetMs: number) =>
      h.client.workflow.execute<typeof backupDrDrill>(DR_DRILL_WORKFLOW, {
        taskQueue: h.queues.backups,
        workflowId: `dr-drill-test-${tag}-${rtoTargetMs}`,
        args: [{ databases: [source], server: 'dr', rtoTargetMs }],
      });
    const [passed] = await drill(3600_000);
    expect(passed!.status, passed!.reason).toBe('restored');
    await saveHistory(`dr-drill-test-${tag}-3600000`, 'backups/dr-drill.json');
    expect(passed!.kind).toBe('dr-drill');
    expect(passed!.rtoMs).toBeGreaterThan(0);
    expect(passed!.rtoMs).toBeLessThan(3600_000);
    expect(passed!.verification?.ok).toBe(true);
    // Its scratch copy is dropped; the roles it needed were there already (the restore above made them).
    expect(await drDatabases()).not.toContain(passed!.targetDatabase);
    expect(passed!.globals?.rolesPresent).toEqual(expect.arrayContaining([owner, group]));

    const [slow] = await drill(1);
    expect(slow!.status).toBe('failed');
    expect(slow!.reason).toMatch(/^RTO \S+.* exceeds RTO_TARGET 1 ms$/);
    expect(slow!.verification?.ok).toBe(true);

    const list = (await (
      await testApp(h).request(`/v1/restores?kind=dr-drill&database=${source}`, { headers: authHeaders() })
    ).json()) as { items: { status: string; rtoMs: number | null; rtoTargetMs: number | null; server: string }[] };
    expect(list.items.map((r) => [r.status, r.rtoTargetMs, r.server])).toEqual([
      ['failed', 1, 'dr'],
      ['restored', 3600_000, 'dr'],
    ]);
    expect(list.items.every((r) => (r.rtoMs ?? 0) > 0)).toBe(true);
  });
});
