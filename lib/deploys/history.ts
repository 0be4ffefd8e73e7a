import type { Pool } from '../db.js';

/** Whether `version` once succeeded on the target: the only versions a rollback may return to. */
export async function versionShipped(pool: Pool, target: string, version: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `SELECT 1 FROM opsflow.deploys WHERE target = $1 AND version = $2 AND status = 'succeeded' LIMIT 1`,
    [target, version],
  );
  return (rowCount ?? 0) > 0;
}
