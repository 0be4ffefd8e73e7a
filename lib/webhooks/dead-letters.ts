/**
 * Closing dead letters without delivering: an operator's discard, and the daily cleanup of resolved ones past
 * retention. (Redrives start workflows and live with the other starts in service.ts.)
 */
import type { Pool } from '../db.js';
import { WebhookError } from './service.js';
import { ofTenant } from './tenants.js';

export async function discardDeadLetter(pool: Pool, deadLetterId: string, by: string, tenant?: string): Promise<void> {
  const { rows } = await pool.query<{ delivery_id: string; resolved_at: Date | null }>(
    `SELECT delivery_id, resolved_at FROM opsflow.dead_letters WHERE id = $1 AND ${ofTenant(2)}`,
    [deadLetterId, tenant ?? null],
  );
  const dl = rows[0];
  if (!dl) throw new WebhookError('not_found', `dead letter ${deadLetterId} not found`);
  const updated = await pool.query(
    `UPDATE opsflow.dead_letters SET resolved_at = now(), resolution = 'discarded', resolved_by = $2
     WHERE id = $1 AND resolved_at IS NULL`,
    [deadLetterId, by],
  );
  if (updated.rowCount === 0) throw new WebhookError('conflict', `dead letter ${deadLetterId} is already resolved`);
  await pool.query(
    `UPDATE opsflow.webhook_deliveries SET status = 'discarded', next_attempt_at = NULL, updated_at = now()
     WHERE id = $1 AND status = 'dead_lettered'`,
    [dl.delivery_id],
  );
}

/** Deletes dead letters resolved longer ago than the retention (the seeds' 30-day cleanup SQL). */
export async function cleanupDeadLetters(pool: Pool, olderThanMs: number): Promise<number> {
  const { rowCount } = await pool.query(
    `DELETE FROM opsflow.dead_letters WHERE resolved_at IS NOT NULL AND resolved_at < now() - ($1::bigint * interval '1 millisecond')`,
    [olderThanMs],
  );
  return rowCount ?? 0;
}
