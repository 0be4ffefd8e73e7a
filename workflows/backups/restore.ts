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
import { BackupDatabase, OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import {
  DEFAULT_MAX_BACKUP_AGE_MS,
  restoreProgressQuery,
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
  target: { server: 'verify' | { database: string }; dbName: string; keep: boolean; preserveOwnership: boolean },
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
    setCurrentDetails(`${name}: ${input.backupId} → ${input.targetDatabase}`);
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
    ...(input.requester ? { requester: input.requester } : {}),
  };
  try {
    const backup = await loadBackup({ backupId: input.backupId });
    result.database = backup.database;
    upsertSearchAttributes([{ key: BackupDatabase, value: backup.database }]);
    await recordRestore({ ...result, startedAt, running: true });
    step('check-target');
    await checkRestoreTarget({ database: backup.database, target: input.targetDatabase, overwrite: input.overwrite });
    step('restore');
    const staging = `${input.targetDatabase.slice(0, 50)}_r${runId.replace(/-/g, '').slice(0, 10)}`.toLowerCase();
    await restoreFirstGoodCopy(
      backup,
      { server: { database: backup.database }, dbName: staging, keep: true, preserveOwnership: true },
      result,
    );
    if (result.status === 'restored') {
      step('promote');
      await promoteRestoredDatabase({
        database: backup.database,
        from: staging,
        to: input.targetDatabase,
        overwrite: input.overwrite,
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
 * The monthly restore drill: for every database, the newest verified backup — from the remote store when
 * there is one — is restored into a scratch database on the verification server, its counts compared with
 * the catalog, and the scratch database dropped. One report for all.
 */
export async function backupRestoreDrill(input: DrillInput): Promise<RestoreResult[]> {
  const { workflowId, startTime, runId } = workflowInfo();
  const startedAt = startTime.toISOString();
  upsertSearchAttributes([
    { key: OpsKind, value: 'backup-drill' },
    { key: OpsStatus, value: 'running' },
  ]);
  const databases = input.databases ?? [];
  const results: RestoreResult[] = [];
  for (const database of databases) {
    const result: RestoreResult = {
      id: `${workflowId}:${database}`,
      kind: 'drill',
      backupId: null,
      database,
      targetDatabase: `opsflow_drill_${runId.replace(/-/g, '').slice(0, 12)}`,
      status: 'failed',
    };
    try {
      const backup = await newestVerifiedBackup({ database });
      if (!backup) {
        result.reason = 'no verified backup to drill';
      } else {
        result.backupId = backup.backupId;
        setCurrentDetails(`restoring ${backup.backupId} (${database}) into ${result.targetDatabase}`);
        await recordRestore({ ...result, startedAt, running: true });
        await restoreFirstGoodCopy(
          backup,
          { server: 'verify', dbName: result.targetDatabase, keep: false, preserveOwnership: false },
          result,
        );
      }
    } catch (err) {
      result.reason = reasonOf(err);
    }
    await recordRestore({ ...result, startedAt });
    results.push(result);
  }
  await sendRestoreReport({ results });
  setCurrentDetails(results.map((r) => `${r.database}: ${r.status}${r.reason ? ` (${r.reason})` : ''}`).join('; '));
  upsertSearchAttributes([
    { key: OpsStatus, value: results.every((r) => r.status === 'restored') ? 'passed' : 'failed' },
  ]);
  return results;
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
