/**
 * A deploy target as callers see it (`GET /v1/deploy-targets`, the CLI, the console): its settings — never its
 * commands — whether it is frozen now, and, for a promoted target, its pipeline.
 */
import type { Pool } from '../db.js';
import { activeFreeze, type FreezeWindow } from './freeze.js';
import { standingAt, standingOf, type Standing } from './promotion.js';
import { promotionEvidence, runningVersion } from './rows.js';
import type { DeployTarget } from './targets.js';

/** A target as callers see it: its settings, never its commands. */
export interface DeployTargetView {
  name: string;
  environment: DeployTarget['environment'];
  requiresApproval: boolean;
  allowSelfApproval: boolean;
  backupDatabase: string | null;
  hasRollbackCommand: boolean;
  timeoutSec: number;
  health: DeployTarget['health'];
  watchWindowSec: number;
  approvalTimeoutSec: number;
  timeZone: string;
  freezeWindows: FreezeWindow[];
  /** The freeze deploys are in now, and when it ends; null when they may go. */
  frozen: { window: string; until: string } | null;
  /** The target versions come from (null: any version may be deployed), and how long they soak there first. */
  promotesFrom: string | null;
  soakSec: number;
}

/** A promotion pipeline as the console and `GET /v1/deploy-targets` show it: source → target, side by side. */
export interface PromotionView {
  from: string;
  /** The version the source runs now and where it stands (null: nothing has run there yet). */
  candidate: { version: string; state: Standing['kind']; at: string | null } | null;
  /** The version the target itself runs now. */
  current: string | null;
}

export const targetView = (t: DeployTarget): DeployTargetView => ({
  name: t.name,
  environment: t.environment,
  requiresApproval: t.requiresApproval,
  allowSelfApproval: t.allowSelfApproval,
  backupDatabase: t.backupDatabase ?? null,
  hasRollbackCommand: t.commands.rollback !== undefined,
  timeoutSec: t.timeoutSec,
  health: t.health,
  watchWindowSec: t.watchWindowSec,
  approvalTimeoutSec: t.approvalTimeoutSec,
  timeZone: t.timeZone,
  freezeWindows: t.freezeWindows,
  frozen: frozenView(t, new Date()),
  promotesFrom: t.promotesFrom ?? null,
  soakSec: t.soakSec,
});

function frozenView(t: DeployTarget, at: Date): DeployTargetView['frozen'] {
  const f = activeFreeze(t, at);
  return f ? { window: f.window, until: f.until.toISOString() } : null;
}

/** A promoted target's pipeline: what its source runs and whether that may come, beside what it runs itself. */
export async function promotionView(pool: Pool, t: DeployTarget, now: Date): Promise<PromotionView | null> {
  if (!t.promotesFrom) return null;
  const [source, current] = await Promise.all([runningVersion(pool, t.promotesFrom), runningVersion(pool, t.name)]);
  const s =
    source === null
      ? undefined
      : standingOf(source, await promotionEvidence(pool, t.promotesFrom, source), t.soakSec, now);
  return {
    from: t.promotesFrom,
    candidate: s ? { version: s.version, state: s.kind, at: standingAt(s)?.toISOString() ?? null } : null,
    current,
  };
}
