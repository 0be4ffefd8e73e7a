/**
 * Restore, the monthly restore drill and the hourly freshness check — replacing restore.sh, the manual
 * "restore test" and the "backups hadn't run for 4 days" surprise.
 *
 * A restore never touches the target until the backup has been restored beside it and its row counts match
 * the catalog: it restores into `<target>_r<run>` and only then drops the old target and renames the new
 * one into place. A failed restore leaves the target exactly as it was.
 */
import {
  ActivityFailure,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createBackupActivities, RestorableBackup } from '../../activities/backups/index.js';
import type { Server } from '../../lib/backups/databases.js';
import { BackupDatabase, OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import {
  DEFAULT_MAX_BACKUP_AGE_MS,
  restoreProgressQuery,
  type DrDrillInput,
  type DrillInput,
  type FreshnessInput,
  type FreshnessResult,
  type RestoreInput,
  type RestoreProgress,
  type RestoreResult,
} from '../../lib/backups/contract.js';

type Activities = ReturnType<typeof createBackupActivities>;

const { loadBackup, checkRestoreTarget, promoteRestoredDatabase, recordRestore, sendRestoreReport } =
  proxyActivities<Activities>({
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['NotRestorable', 'BadTarget', 'UnknownDatabase'] },
  });
// Reads the globals copy from a store and applies it in one transaction: minutes at most.
const { restoreGlobals } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['NotRestorable', 'RestoreFailed'] },
});
const { restoreAndCompare } = proxyActivities<Activities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 3, initialInterval: '30s' },
});
const { newestVerifiedBackup, checkBackupFreshness } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10 },
});

const reasonOf = (err: unknown) =>
  err instanceof ActivityFailure ? (err.cause?.message ?? err.message) : (err as Error).message;

/** Tries each stored copy in turn (local first for speed) until one restores with matching counts. */
async function restoreFirstGoodCopy(
  backup: RestorableBackup,
  target: { server: Server; dbName: string; keep: boolean; preserveOwnership: boolean },
  result: RestoreResult,
): Promise<void> {
  const reasons: string[] = [];
  for (const location of backup.locations) {
    result.from = location;
    result.verification = await restoreAndCompare({
      ...target,
      location,
      sha256: backup.sha256,
      sizeBytes: backup.sizeBytes,
      expected: backup.tableCounts,
    });
    if (result.verification.ok) {
      result.status = 'restored';
      result.reason = undefined;
      return;
    }
    reasons.push(`${location.store}: ${result.verification.reason ?? 'failed'}`);
    result.reason = reasons.join('; ');
  }
}

export async function restoreBackup(input: RestoreInput): Promise<RestoreResult> {
  const { startTime, runId } = workflowInfo();
  const startedAt = startTime.toISOString();
  const progress: RestoreProgress = { step: 'load' };
  setHandler(restoreProgressQuery, () => progress);
  const step = (name: RestoreProgress['step']) => {
    progress.step = name;
    setCurrentDetails(
      `${name}: ${input.backupId} → ${input.targetDatabase}${input.server ? ` on ${input.server}` : ''}`,
    );
  };
  step('load');
  upsertSearchAttributes([
    { key: OpsKind, value: 'backup-restore' },
    { key: OpsStatus, value: 'running' },
  ]);
  const result: RestoreResult = {
    id: input.id,
    kind: 'restore',
    backupId: input.backupId,
    database: '',
    targetDatabase: input.targetDatabase,
    status: 'failed',
    ...(input.server ? { server: input.server } : {}),
    ...(input.requester ? { requester: input.requester } : {}),
  };
  // Runs started before RESTORE_SERVERS carry no server and take exactly the steps they always took.
  const { server } = input;
  try {
    const backup = await loadBackup({ backupId: input.backupId });
    result.database = backup.database;
    upsertSearchAttributes([{ key: BackupDatabase, value: backup.database }]);
    await recordRestore({ ...result, startedAt, running: true });
    step('check-target');
    await checkRestoreTarget({
      database: backup.database,
      target: input.targetDatabase,
      overwrite: input.overwrite,
      server,
    });
    if (server) {
      // Another server may lack the source's roles: they come first, so the restore can keep its owners.
      step('globals');
      result.globals = await restoreGlobals({ backupId: backup.backupId, server });
    }
    step('restore');
    const staging = `${input.targetDatabase.slice(0, 50)}_r${runId.replace(/-/g, '').slice(0, 10)}`.toLowerCase();
    await restoreFirstGoodCopy(
      backup,
      {
        server: server ? { restoreServer: server } : { database: backup.database },
        dbName: staging,
        keep: true,
        preserveOwnership: true,
      },
      result,
    );
    if (result.status === 'restored') {
      step('promote');
      await promoteRestoredDatabase({
        database: backup.database,
        from: staging,
        to: input.targetDatabase,
        overwrite: input.overwrite,
        server,
      });
    }
  } catch (err) {
    result.status = 'failed';
    result.reason = reasonOf(err);
  }
  if (result.database) {
    step('record');
    await recordRestore({ ...result, startedAt });
  }
  step('report');
  await sendRestoreReport({ results: [result] });
  progress.step = 'done';
  setCurrentDetails(`${result.status}${result.reason ? `: ${result.reason}` : ''}`);
  upsertSearchAttributes([{ key: OpsStatus, value: result.status }]);
  return result;
}

/**
 * A drill's loop, for each database: its newest verified backup on the remote store, `restore` (which sets the
 * result's status), the row recorded; then one report for all, and the run's status.
 */
async function drillEach(
  base: Pick<RestoreResult, 'kind'> & Partial<RestoreResult>,
  databases: string[],
  restore: (backup: RestorableBackup, result: RestoreResult, began: number) => Promise<void>,
): Promise<RestoreResult[]> {
  const { workflowId, startTime, runId } = workflowInfo();
  const startedAt = startTime.toISOString();
  const results: RestoreResult[] = [];
  for (const database of databases) {
    const began = Date.now();
    const result: RestoreResult = {
      id: `${workflowId}:${database}`,
      backupId: null,
      database,
      targetDatabase: `opsflow_drill_${runId.replace(/-/g, '').slice(0, 12)}`,
      status: 'failed',
      ...base,
    };
    try {
      const backup = await newestVerifiedBackup({ database });
      if (!backup) {
        result.reason = 'no verified backup to drill';
      } else {
        result.backupId = backup.backupId;
        setCurrentDetails(
          `restoring ${backup.backupId} (${database}) into ${result.targetDatabase}${result.server ? ` on ${result.server}` : ''}`,
        );
        await recordRestore({ ...result, startedAt, running: true });
        await restore(backup, result, began);
      }
    } catch (err) {
      result.status = 'failed';
      result.reason = reasonOf(err);
    }
    await recordRestore({ ...result, startedAt });
    results.push(result);
  }
  await sendRestoreReport({ results });
  const rto = (r: RestoreResult) => (r.rtoMs !== undefined ? ` in ${formatMs(r.rtoMs)}` : '');
  setCurrentDetails(
    results.map((r) => `${r.database}: ${r.status}${rto(r)}${r.reason ? ` (${r.reason})` : ''}`).join('; '),
  );
  upsertSearchAttributes([
    { key: OpsStatus, value: results.every((r) => r.status === 'restored') ? 'passed' : 'failed' },
  ]);
  return results;
}

/**
 * The monthly restore drill: for every database, the newest verified backup — from the remote store when
 * there is one — is restored into a scratch database on the verification server, its counts compared with
 * the catalog, and the scratch database dropped. One report for all.
 */
export async function backupRestoreDrill(input: DrillInput): Promise<RestoreResult[]> {
  upsertSearchAttributes([
    { key: OpsKind, value: 'backup-drill' },
    { key: OpsStatus, value: 'running' },
  ]);
  return drillEach({ kind: 'drill' }, input.databases ?? [], (backup, result) =>
    restoreFirstGoodCopy(
      backup,
      { server: 'verify', dbName: result.targetDatabase, keep: false, preserveOwnership: false },
      result,
    ),
  );
}

/**
 * The monthly DR drill: for every database, the newest verified backup the remote store holds is restored onto
 * a RESTORE_SERVERS entry as a disaster would need it — the server's roles first, then the database into a
 * scratch name, its counts compared — and the scratch database dropped. Its RTO is the time from the drill's
 * start to a usable database; slower than RTO_TARGET fails the drill, naming both. One report for all.
 */
export async function backupDrDrill(input: DrDrillInput): Promise<RestoreResult[]> {
  upsertSearchAttributes([
    { key: OpsKind, value: 'backup-dr-drill' },
    { key: OpsStatus, value: 'running' },
  ]);
  const base = { kind: 'dr-drill' as const, server: input.server, rtoTargetMs: input.rtoTargetMs };
  return drillEach(base, input.databases, async (backup, result, began) => {
    result.globals = await restoreGlobals({ backupId: backup.backupId, server: input.server });
    await restoreFirstGoodCopy(
      backup,
      { server: { restoreServer: input.server }, dbName: result.targetDatabase, keep: false, preserveOwnership: true },
      result,
    );
    if (result.status !== 'restored') return;
    // Workflow time: when the restore's counts matched, as recorded in the history.
    result.rtoMs = Date.now() - began;
    if (result.rtoMs > input.rtoTargetMs) {
      result.status = 'failed';
      result.reason = `RTO ${formatMs(result.rtoMs)} exceeds RTO_TARGET ${formatMs(input.rtoTargetMs)}`;
    }
  });
}

/** 4h 12m, 3m 5s, 850 ms: what a drill's RTO reads as. */
function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s % 60}s` : `${s}s`;
}

/** Hourly: alert ops when a database has no verified backup in the last 26 h. */
export async function backupFreshnessCheck(input: FreshnessInput): Promise<FreshnessResult> {
  upsertSearchAttributes([{ key: OpsKind, value: 'backup-freshness' }]);
  const result = await checkBackupFreshness({ maxAgeMs: input.maxAgeMs ?? DEFAULT_MAX_BACKUP_AGE_MS });
  const stale = result.databases.filter((d) => d.stale).map((d) => d.database);
  setCurrentDetails(stale.length ? `no verified backup in time: ${stale.join(', ')}` : 'every database fresh');
  upsertSearchAttributes([{ key: OpsStatus, value: result.databases.some((d) => d.stale) ? 'stale' : 'fresh' }]);
  return result;
}
