/**
 * PostgreSQL: the pool, creating the database on first start, and numbered SQL migrations applied
 * under an advisory lock so two processes starting at once cannot race.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from './logger.js';

export type Pool = pg.Pool;
/** A pool or one transaction's client: what a statement runs on. */
export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/**
 * `connectTimeoutMs` bounds how long a query waits for a connection (a free pooled one, or a new one to a server
 * that may be going away). The API passes a short one so that a request answers 503 quickly while PostgreSQL is
 * unreachable; the workers keep the default.
 */
export function createPool(databaseUrl: string, max = 10, connectTimeoutMs = 10_000): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, connectionTimeoutMillis: connectTimeoutMs });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  // A checked-out client between two queries (inside a transaction, say) that loses its connection emits 'error'
  // with nobody listening, which would crash the process (a chaos run saw it when PostgreSQL stopped). Its next
  // query fails instead, with an error the caller handles, and the pool drops the broken client on release.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** Creates the database named in `databaseUrl` if it does not exist (connecting to `postgres` to do so). */
export async function ensureDatabase(databaseUrl: string): Promise<{ created: boolean }> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return { created: false };
    try {
      await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
    } catch (err) {
      // Another process created it between our check and our CREATE.
      if ((err as { code?: string }).code !== '42P04') throw err;
      return { created: false };
    }
    return { created: true };
  } finally {
    await admin.end();
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Finds `db/migrations` from the source tree or from `dist/` alike. */
export function defaultMigrationsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'db', 'migrations');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('db/migrations not found next to the opsflow code');
}

const MIGRATION_LOCK = 7_340_517; // arbitrary, constant: pg_advisory_lock key for migrations

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

/**
 * Applies every `NNN_name.sql` in order that is not yet recorded in `opsflow.schema_migrations`,
 * each in its own transaction. Safe to run from many processes at once.
 */
export async function migrate(pool: pg.Pool, log?: Logger, dir = defaultMigrationsDir()): Promise<MigrationResult> {
  const files = (await readdir(dir)).filter((f) => /^\d+_[\w-]+\.sql$/.test(f)).sort();
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE SCHEMA IF NOT EXISTS opsflow');
    await client.query(`CREATE TABLE IF NOT EXISTS opsflow.schema_migrations (
      version text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set(
      (await client.query<{ version: string }>('SELECT version FROM opsflow.schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file)) continue;
      const sql = await readFile(path.join(dir, file), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO opsflow.schema_migrations (version) VALUES ($1)', [file]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(file);
      log?.info({ migration: file }, 'migration applied');
    }
    return { applied, alreadyApplied: done.size };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
}

/** Runs `fn` in one transaction on one connection: COMMIT when it returns, ROLLBACK when it throws. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    return await inTransaction(client, fn);
  } finally {
    client.release();
  }
}

/** Runs `fn` in one transaction on a connection the caller holds: COMMIT when it returns, ROLLBACK when it throws. */
export async function inTransaction<C extends pg.ClientBase, T>(client: C, fn: (client: C) => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** SQLSTATEs of a server going away or not yet taking connections (admin/crash shutdown, starting up). */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * True when an error means PostgreSQL could not be reached or dropped the connection (a restart, a failover),
 * not that a statement was wrong: callers answer "try again" rather than "internal error".
 */
export function isPostgresUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: string };
  if (e.code && (UNAVAILABLE_SQLSTATES.has(e.code) || UNAVAILABLE_ERRNOS.has(e.code))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    e.message,
  );
}
