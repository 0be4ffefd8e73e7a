/**
 * Promotion: a target that `promotesFrom` another takes only versions that succeeded there and soaked — stayed
 * there `soakSec` after its deploy (gate and watch window) finished, with no manual rollback away from it since.
 * The API checks every deploy of such a target against its source; `promote` deploys the source's current version
 * when it is good. Rollbacks are not promotions and are not checked. Pure: the rows come from rows.ts.
 */
import type { PromotionEvidence } from './rows.js';
import type { DeployTarget } from './targets.js';

/** Where a version stands on a promotion's source target. */
export type Standing =
  | { kind: 'good'; version: string; since: Date }
  | { kind: 'soaking'; version: string; until: Date }
  | { kind: 'rolled_back'; version: string; at: Date; rollbackId: string }
  | { kind: 'never'; version: string };

/** How `version` stands on its source at `now`, from the evidence `promotionEvidence` (rows.ts) found. */
export function standingOf(
  version: string,
  evidence: PromotionEvidence | undefined,
  soakSec: number,
  now: Date,
): Standing {
  if (!evidence) return { kind: 'never', version };
  if (evidence.rollback)
    return { kind: 'rolled_back', version, at: evidence.rollback.at, rollbackId: evidence.rollback.id };
  const until = new Date(evidence.finishedAt.getTime() + soakSec * 1000);
  return until > now ? { kind: 'soaking', version, until } : { kind: 'good', version, since: until };
}

/** The moment a standing names: good since, soaking until, rolled back at; none for `never`. */
export function standingAt(s: Standing): Date | null {
  switch (s.kind) {
    case 'good':
      return s.since;
    case 'soaking':
      return s.until;
    case 'rolled_back':
      return s.at;
    case 'never':
      return null;
  }
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
