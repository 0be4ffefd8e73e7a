/**
 * scratchJanitor — daily: drops the scratch databases (verification and drill restores, restore staging
 * copies) that killed runs left behind, where it can prove them leftovers: marked by opsflow when made, older
 * than a day, nobody connected (lib/backups/scratch.ts). What it dropped and kept is its result.
 */
import { proxyActivities, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { createBackupActivities } from '../../activities/backups/index.js';
import type { ScratchSweep } from '../../lib/backups/scratch.js';
import { OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import { DEFAULT_SCRATCH_MAX_AGE_MS, type ScratchJanitorInput } from '../../lib/backups/contract.js';

const { sweepScratchDatabases } = proxyActivities<ReturnType<typeof createBackupActivities>>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 5, initialInterval: '1 minute' },
});

export async function scratchJanitor(input: ScratchJanitorInput): Promise<ScratchSweep[]> {
  upsertSearchAttributes([{ key: OpsKind, value: 'scratch-janitor' }]);
  const results = await sweepScratchDatabases({ olderThanMs: input.olderThanMs ?? DEFAULT_SCRATCH_MAX_AGE_MS });
  const dropped = results.flatMap((r) => r.dropped);
  const marked = results.flatMap((r) => r.marked);
  setCurrentDetails(
    `dropped ${dropped.length} leftover scratch database(s)${dropped.length ? `: ${dropped.join(', ')}` : ''}` +
      (marked.length ? `; first seen (dropped tomorrow if unused): ${marked.join(', ')}` : ''),
  );
  upsertSearchAttributes([{ key: OpsStatus, value: 'ok' }]);
  return results;
}
