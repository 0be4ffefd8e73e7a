/**
 * backupDatabase — replaces backup.sh and the monthly manual restore test. One run per database and time,
 * id `backup:<database>:<startedAt>`:
 *
 * 1. Dump: snapshot + per-table row counts, pg_dump of that snapshot streamed into every store with sha256.
 * 2. Verify: every stored copy re-read and hashed; restored into a scratch database; row counts compared.
 * 3. Record the run in the catalog (verified, or failed with the reason).
 * 4. Retention per store — only after a verified backup, so a failure never costs the previous good one.
 * 5. Email the report.
 * A cancelled run still records itself (failed, "canceled") and reports: the catalogue never keeps a row
 * `running` for a run that is over.
 */
import {
  type ActivityOptions,
  ActivityFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createBackupActivities } from '../../activities/backups/index.js';
import { BackupDatabase, OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import {
  progressQuery,
  type BackupInput,
  type BackupProgress,
  type BackupResult,
  type DumpResult,
} from '../../lib/backups/contract.js';

type Activities = ReturnType<typeof createBackupActivities>;

// Long steps heartbeat; a dead worker's step is retried elsewhere within a minute.
const longRunning = (retry: BackupInput['stepRetry']): ActivityOptions => ({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: retry?.heartbeatTimeoutMs ?? '1 minute',
  retry: {
    maximumAttempts: retry?.maximumAttempts ?? 3,
    initialInterval: retry?.initialIntervalMs ?? '30s',
    nonRetryableErrorTypes: ['UnknownDatabase', 'ClientTooOld'],
  },
});
const dbShort = { startToCloseTimeout: '1 minute', retry: { maximumAttempts: 10 } } as const;

const { recordBackup, applyRetention, sendBackupReport } = proxyActivities<Activities>(dbShort);

export async function backupDatabase(input: BackupInput): Promise<BackupResult> {
  const { dumpToStores, verifyBackup } = proxyActivities<Activities>(longRunning(input.stepRetry));
  const { workflowId: id, startTime } = workflowInfo();
  const startedAt = startTime.toISOString();
  const progress: BackupProgress = { step: 'dump' };
  setHandler(progressQuery, () => progress);
  upsertSearchAttributes([
    { key: OpsKind, value: 'backup' },
    { key: BackupDatabase, value: input.database },
    { key: OpsStatus, value: 'running' },
  ]);
  const result: BackupResult = { id, database: input.database, status: 'failed', locations: [], deleted: [] };
  const steps: Record<string, { startedAt: string; ms: number }> = {};
  const timed = async <T>(name: BackupProgress['step'], fn: () => Promise<T>): Promise<T> => {
    progress.step = name;
    setCurrentDetails(`${name} (${input.database})${result.reason ? ` — failed: ${result.reason}` : ''}`);
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      steps[name] = { startedAt: new Date(t0).toISOString(), ms: Date.now() - t0 };
    }
  };
  let dump: DumpResult | undefined;
  let canceled = false;
  try {
    await recordBackup({ id, database: input.database, startedAt, status: 'running' });
    const key = `${input.database}/${startedAt.replace(/[:.]/g, '-')}.dump`;
    dump = await timed('dump', () => dumpToStores({ runId: id, database: input.database, key }));
    Object.assign(result, { sizeBytes: dump.sizeBytes, sha256: dump.sha256, locations: dump.locations });
    const d = dump;
    result.verification = await timed('verify', () =>
      verifyBackup({
        runId: id,
        locations: d.locations,
        sha256: d.sha256,
        sizeBytes: d.sizeBytes,
        tableCounts: d.tableCounts,
      }),
    );
    if (result.verification.ok) result.status = 'verified';
    else result.reason = result.verification.reason;
  } catch (err) {
    canceled = isCancellation(err);
    result.status = 'failed';
    // An activity's failure carries the activity's own message as its cause.
    result.reason = canceled
      ? 'canceled'
      : err instanceof ActivityFailure
        ? (err.cause?.message ?? err.message)
        : (err as Error).message;
  }

  // Once cancelled, the workflow's own scope cancels every new activity: the record and the report run in
  // a scope that cannot be cancelled, so the catalogue says how the run ended.
  const finish = async () => {
    await timed('record', () =>
      recordBackup({
        id,
        database: input.database,
        startedAt,
        status: result.status,
        reason: result.reason,
        steps,
        dump,
        verification: result.verification,
      }),
    );
    if (result.status === 'verified') {
      result.deleted = await timed('retention', () => applyRetention({ database: input.database }));
    }
    await timed('report', () => sendBackupReport({ result, steps }));
  };
  if (canceled) await CancellationScope.nonCancellable(finish);
  else await finish();
  progress.step = 'done';
  setCurrentDetails(
    result.status === 'verified'
      ? `verified: ${result.sizeBytes ?? 0} bytes, ${Object.keys(dump?.tableCounts ?? {}).length} tables, ${result.locations.length} stores`
      : `failed: ${result.reason ?? 'unknown reason'}`,
  );
  upsertSearchAttributes([{ key: OpsStatus, value: result.status }]);
  return result;
}
