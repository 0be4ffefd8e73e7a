/**
 * Backups and restores as a role that is not the superuser (what compose gives them): the dump, its verification
 * and a restore all work; a restore keeps the archive's owners and grants when the role may make each owner one
 * (a member of it), and otherwise restores every object as its own and says which owners it did not keep —
 * pg_restore stopped at the first ALTER ... OWNER before. The role cannot drop a database it does not own.
 * Real PostgreSQL, pg_dump/pg_restore, the real Temporal server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BACKUP_WORKFLOW,
  backupWorkflowId,
  type BackupResult,
  type RestoreResult,
} from '../../lib/backups/contract.js';
import { quoteIdent } from '../../lib/db.js';
import type { backupDatabase } from '../../workflows/backups/workflow.js';
import { authHeaders } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, queryIn, withAdmin } from '../helpers/databases.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';

const tag = `${process.pid}`;
const source = `opsflow_ro_src_${tag}`;
const owner = `opsflow_ro_owner_${tag}`;
const restorer = `opsflow_ro_backup_${tag}`;
const targets = [1, 2].map((i) => `${source}_restore_${i}`);

/** The URL of `database` as `role` (the test server trusts local connections). */
const urlAs = (role: string, database: string) => {
  const url = new URL(databaseUrlOf(database));
  url.username = role;
  url.password = '';
  return url.toString();
};

describe('backups and restores as a role that is not the superuser', () => {
  let h: Harness;
  let workers: TestWorkers;
  let backup: BackupResult;

  beforeAll(async () => {
    for (const db of [source, ...targets]) await dropDatabase(db);
    await withAdmin(async (a) => {
      await a.query(`DROP ROLE IF EXISTS ${quoteIdent(restorer)}`);
      await a.query(`DROP ROLE IF EXISTS ${quoteIdent(owner)}`);
      await a.query(`CREATE ROLE ${quoteIdent(owner)} NOLOGIN`);
      // The shape compose gives its backup role: reads everything, creates databases, nothing more.
      await a.query(`CREATE ROLE ${quoteIdent(restorer)} LOGIN CREATEDB NOSUPERUSER NOCREATEROLE`);
      await a.query(`GRANT pg_read_all_data TO ${quoteIdent(restorer)}`);
      await a.query(`CREATE DATABASE ${quoteIdent(source)}`);
    });
    await queryIn(
      source,
      `CREATE SCHEMA app AUTHORIZATION ${quoteIdent(owner)};
       CREATE TABLE app.orders (id serial PRIMARY KEY, total numeric NOT NULL);
       INSERT INTO app.orders (total) SELECT g FROM generate_series(1, 120) g;
       ALTER TABLE app.orders OWNER TO ${quoteIdent(owner)};
       GRANT SELECT ON app.orders TO PUBLIC;`,
    );
    h = await createHarness({ BACKUP_DATABASE_URLS: urlAs(restorer, source) });
    workers = await startWorkers(h, ['backups']);
    backup = await h.client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
      taskQueue: h.queues.backups,
      workflowId: backupWorkflowId(source, new Date()),
      args: [{ database: source }],
    });
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    for (const db of [source, ...targets]) await dropDatabase(db);
    await withAdmin(async (a) => {
      await a.query(`DROP ROLE IF EXISTS ${quoteIdent(restorer)}`);
      await a.query(`DROP ROLE IF EXISTS ${quoteIdent(owner)}`);
    });
  });

  const restore = async (targetDatabase: string) => {
    const res = await testApp(h).request(`/v1/backups/${encodeURIComponent(backup.id)}/restore`, {
      method: 'POST',
      headers: authHeaders(),
      body: JSON.stringify({ targetDatabase, confirm: targetDatabase }),
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { id, workflowId } = (await res.json()) as { id: string; workflowId: string };
    const result = (await h.client.workflow.getHandle(workflowId).result()) as RestoreResult;
    return { id, result };
  };
  const ownerOf = async (db: string) =>
    (await queryIn<{ o: string }>(db, "SELECT tableowner AS o FROM pg_tables WHERE tablename = 'orders'"))[0]?.o;
  const publicCanRead = async (db: string) =>
    (await queryIn<{ r: boolean }>(db, "SELECT has_table_privilege('public', 'app.orders', 'SELECT') AS r"))[0]?.r;

  it('dumps and verifies as that role', () => {
    expect(backup.status, backup.reason).toBe('verified');
    expect(backup.verification?.tables).toEqual([{ table: 'app.orders', expected: 120, restored: 120 }]);
  });

  it('restores owners it may not set as its own, says so, and the answer shows it; a member keeps them', async () => {
    const first = await restore(targets[0]!);
    expect(first.result.status, first.result.reason).toBe('restored');
    expect(first.result.verification?.ownersNotKept).toEqual([owner]);
    expect(await ownerOf(targets[0]!)).toBe(restorer);
    expect(await publicCanRead(targets[0]!)).toBe(false); // no grants without their owner
    expect(await queryIn<{ n: string }>(targets[0]!, 'SELECT count(*) AS n FROM app.orders')).toEqual([{ n: '120' }]);
    const answer = (await (
      await testApp(h).request(`/v1/restores/${encodeURIComponent(first.id)}`, { headers: authHeaders() })
    ).json()) as { verification: { ownersNotKept?: string[] } };
    expect(answer.verification.ownersNotKept).toEqual([owner]);

    // Made a member of the owner, the same role restores owners and grants as they were.
    await withAdmin((a) => a.query(`GRANT ${quoteIdent(owner)} TO ${quoteIdent(restorer)}`));
    const second = await restore(targets[1]!);
    expect(second.result.status, second.result.reason).toBe('restored');
    expect(second.result.verification?.ownersNotKept).toBeUndefined();
    expect(await ownerOf(targets[1]!)).toBe(owner);
    expect(await publicCanRead(targets[1]!)).toBe(true);
  });

  it('cannot drop a database it does not own, nor make itself the superuser', async () => {
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: urlAs(restorer, 'postgres') });
    await c.connect();
    try {
      await expect(c.query(`DROP DATABASE ${quoteIdent(source)}`)).rejects.toThrow(/must be owner/);
      await expect(c.query(`ALTER ROLE ${quoteIdent(restorer)} SUPERUSER`)).rejects.toThrow(/must be superuser/);
    } finally {
      await c.end();
    }
  });
});
