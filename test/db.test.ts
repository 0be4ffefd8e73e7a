import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPool, ensureDatabase, migrate, quoteIdent } from '../lib/db.js';

describe('database', () => {
  const admin = inject('adminDatabaseUrl');
  const scratch = `opsflow_dbtest_${process.pid}`;
  const scratchUrl = admin.replace(/\/postgres$/, `/${scratch}`);

  afterAll(async () => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(scratch)} WITH (FORCE)`);
    await c.end();
  });

  it('a checked-out client whose connection is killed between queries fails its next query, not the process', async () => {
    const pool = createPool(admin, 1);
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const client = await pool.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const killer = new pg.Client({ connectionString: admin });
      await killer.connect();
      await killer.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      await killer.end();
      await new Promise((resolve) => setTimeout(resolve, 300)); // the termination reaches the idle client
      await expect(client.query('SELECT 1')).rejects.toThrow();
      client.release();
      // The pool dropped the broken client: the next checkout is a working one.
      expect((await pool.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await pool.end();
    }
  });

  it('creates the database once', async () => {
    expect(await ensureDatabase(scratchUrl)).toEqual({ created: true });
    expect(await ensureDatabase(scratchUrl)).toEqual({ created: false });
  });

  it('applies migrations once, even from two processes at the same time', async () => {
    const a = createPool(scratchUrl, 1);
    const b = createPool(scratchUrl, 1);
    try {
      const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
      // Exactly one of the two applied each file; the other found them applied.
      expect([...ra.applied, ...rb.applied].sort()).toEqual(ra.applied.length ? ra.applied : rb.applied);
      expect(ra.applied.length + rb.applied.length).toBeGreaterThan(0);
      const again = await migrate(a);
      expect(again.applied).toEqual([]);
      const { rows } = await a.query<{ n: number }>('SELECT count(*)::int AS n FROM opsflow.schema_migrations');
      expect(rows[0]?.n).toBe(again.alreadyApplied);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('rolls back a failing migration and names it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
    await writeFile(path.join(dir, '001_ok.sql'), 'CREATE TABLE opsflow.t_ok (id int);');
    await writeFile(
      path.join(dir, '002_bad.sql'),
      'CREATE TABLE opsflow.t_bad (id int); SELECT nonsense FROM nowhere;',
    );
    const pool = createPool(scratchUrl, 1);
    try {
      await pool.query('DROP SCHEMA opsflow CASCADE');
      await expect(migrate(pool, undefined, dir)).rejects.toThrow(/002_bad\.sql/);
      const { rows } = await pool.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'opsflow' ORDER BY 1",
      );
      // 001 stays applied; nothing of 002 is left half-done.
      expect(rows.map((r: { table_name: string }) => r.table_name)).toEqual(['schema_migrations', 't_ok']);
    } finally {
      await pool.end();
    }
  });
});
