/**
 * Trust: a database password never reaches a PostgreSQL tool's argv (which `ps` shows to every user of the
 * machine) — neither in the URL's user part nor as libpq's `?password=` parameter; it goes in PGPASSWORD, and the
 * rest of the URL (other parameters included) is kept. The end-to-end check with a real pg_dump is in
 * test/backups/integrity.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { pgConnection } from '../../activities/backups/pg-tools.js';

describe('security: database passwords stay out of argv', () => {
  it.each([
    ['postgres://app:s3cr%2Ft@db.internal:5432/orders?sslmode=require', 's3cr/t'],
    ['postgres://app@db.internal:5432/orders?password=s3cr%2Ft&sslmode=require', 's3cr/t'],
    ['postgres://app:old@db.internal:5432/orders?sslmode=require&password=s3cr%2Ft', 's3cr/t'],
  ])('%s', (url, password) => {
    const { arg, env } = pgConnection(url);
    expect(arg).not.toContain('s3cr');
    expect(arg).not.toContain('password');
    expect(arg).not.toContain('old');
    expect(arg).toContain('sslmode=require');
    expect(arg).toMatch(/^--dbname=postgres:\/\/app@db\.internal:5432\/orders\?/);
    expect(env).toEqual({ PGPASSWORD: password });
  });

  it('no password: no PGPASSWORD (the tool falls back to .pgpass or trust)', () => {
    expect(pgConnection('postgres://app@127.0.0.1/orders')).toEqual({
      arg: '--dbname=postgres://app@127.0.0.1/orders',
      env: {},
    });
  });
});
