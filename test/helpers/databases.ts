/** Scratch databases on the test run's PostgreSQL server (beside the run's own database). */
import pg from 'pg';
import { inject } from 'vitest';
import { createPool, migrate, quoteIdent } from '../../lib/db.js';

/** Runs `fn` with a client connected to the server's `postgres` database as the test superuser. */
export async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The URL of database `name` on the test server. */
export const databaseUrlOf = (name: string) => inject('adminDatabaseUrl').replace(/\/postgres$/, `/${name}`);

export const dropDatabase = (name: string) =>
  withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));

/** Runs `sql` in database `name` on the test server and returns its rows. */
export async function queryIn<R extends pg.QueryResultRow = Record<string, unknown>>(
  name: string,
  sql: string,
): Promise<R[]> {
  const c = new pg.Client({ connectionString: databaseUrlOf(name) });
  await c.connect();
  try {
    return (await c.query<R>(sql)).rows;
  } finally {
    await c.end();
  }
}

/** Drops `name` if a previous run left it, then creates it empty. */
export async function recreateDatabase(name: string): Promise<void> {
  await dropDatabase(name);
  await withAdmin((c) => c.query(`CREATE DATABASE ${quoteIdent(name)}`));
}

/** A new, migrated opsflow state database of a test file's own (dropped first if it exists); its URL. */
export async function freshStateDatabase(name: string): Promise<string> {
  await recreateDatabase(name);
  const pool = createPool(databaseUrlOf(name), 1);
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  return databaseUrlOf(name);
}
