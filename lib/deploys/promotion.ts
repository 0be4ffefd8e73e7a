/**
 * Promotion: a target that `promotesFrom` another takes only versions that succeeded there and soaked — stayed
 * there `soakSec` after its deploy (gate and watch window) finished, with no manual rollback away from it since.
 * The API checks every deploy of such a target against its source; `promote` deploys the source's current version
 * when it is good. Rollbacks are not promotions and are not checked.
 */
import type { Pool } from '../db.js';
import type { DeployTarget } from './targets.js';

/** Where a version stands on a promotion's source target. */
export type Standing =
  | { kind: 'good'; version: string; since: Date }
  | { kind: 'soaking'; version: string; until: Date }
  | { kind: 'rolled_back'; version: string; at: Date; rollbackId: string }
  | { kind: 'never'; version: string };

/** The version `source` runs now: its newest finished deploy's, or the one a rolled-back deploy went back to. */
export async function currentVersion(pool: Pool, source: string): Promise<string | null> {
  const { rows } = await pool.query<{ status: string; version: string | null; previous_version: string | null }>(
    `SELECT status, version, previous_version FROM opsflow.deploys
     WHERE target = $1 AND status IN ('succeeded', 'rolled_back') ORDER BY started_at DESC LIMIT 1`,
    [source],
  );
  const r = rows[0];
  if (!r) return null;
  return r.status === 'rolled_back' ? r.previous_version : r.version;
}

/** How `version` stands on `source` at `now`, given the soak its promotion asks. */
export async function standing(
  pool: Pool,
  source: string,
  version: string,
  soakSec: number,
  now: Date,
): Promise<Standing> {
  const { rows } = await pool.query<{ finished_at: Date; rollback_id: string | null; rollback_at: Date | null }>(
    `SELECT d.finished_at, r.id AS rollback_id, r.started_at AS rollback_at
     FROM opsflow.deploys d
     LEFT JOIN LATERAL (
       SELECT id, started_at FROM opsflow.deploys r
       WHERE r.target = d.target AND r.kind = 'rollback' AND r.previous_version = d.version
         AND r.started_at > d.started_at
       ORDER BY r.started_at LIMIT 1
     ) r ON true
     WHERE d.target = $1 AND d.kind = 'deploy' AND d.version = $2 AND d.status = 'succeeded'
       AND d.finished_at IS NOT NULL
     ORDER BY d.finished_at DESC LIMIT 1`,
    [source, version],
  );
  const r = rows[0];
  if (!r) return { kind: 'never', version };
  if (r.rollback_id) return { kind: 'rolled_back', version, at: r.rollback_at!, rollbackId: r.rollback_id };
  const until = new Date(r.finished_at.getTime() + soakSec * 1000);
  return until > now ? { kind: 'soaking', version, until } : { kind: 'good', version, since: until };
}

/** Why a standing does not allow the promotion, for a 422 (undefined: it does). */
export function refusalOf(target: DeployTarget, s: Standing): string | undefined {
  const from = target.promotesFrom!;
  switch (s.kind) {
    case 'good':
      return undefined;
    case 'never':
      return `${target.name} takes only versions that succeeded on ${from} (promotesFrom): ${s.version} has not; deploy it to ${from} first`;
    case 'soaking':
      return `${s.version} succeeded on ${from} but soaks there until ${s.until.toISOString()} (soakSec ${target.soakSec}) before ${target.name} takes it`;
    case 'rolled_back':
      return `${s.version} was rolled back on ${from} at ${s.at.toISOString()} (${s.rollbackId}): ${target.name} does not take it`;
  }
}
