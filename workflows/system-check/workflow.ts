/**
 * systemCheck — replaces health-check.sh.
 *
 * 1. Check PostgreSQL and every HTTP health URL, in parallel; each check reports status and latency.
 * 2. Record the run in PostgreSQL.
 * 3. Set OpsStatus so failing checks are one filter in the Temporal UI; return the per-check result.
 */
import { proxyActivities, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { createSystemCheckActivities } from '../../activities/system-check/index.js';
import { OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import type { SystemCheckInput, SystemCheckResult } from '../../lib/system-check/contract.js';

type Activities = ReturnType<typeof createSystemCheckActivities>;

// A check reports failure as a result; retrying one would only hide how long it took.
const probe = { startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 1 } } as const;
const dbShort = { startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 5 } } as const;

const { checkPostgres, checkHttp } = proxyActivities<Activities>(probe);
const { recordSystemCheck } = proxyActivities<Activities>(dbShort);

export async function systemCheck(input: SystemCheckInput): Promise<SystemCheckResult> {
  const startedAt = new Date().toISOString();
  upsertSearchAttributes([{ key: OpsKind, value: 'system-check' }]);

  const checks = await Promise.all([
    ...(input.postgres === false ? [] : [checkPostgres({ timeoutMs: input.timeoutMs })]),
    ...input.httpUrls.map((url) => checkHttp({ url, timeoutMs: input.timeoutMs })),
  ]);
  const failed = checks.filter((c) => !c.ok);
  const result: SystemCheckResult = {
    status: failed.length === 0 ? 'ok' : 'degraded',
    checks,
    startedAt,
    finishedAt: new Date().toISOString(),
  };

  await recordSystemCheck({ workflowId: workflowInfo().workflowId, result });
  upsertSearchAttributes([{ key: OpsStatus, value: result.status }]);
  setCurrentDetails(
    failed.length === 0
      ? `all ${checks.length} checks ok`
      : `failing: ${failed.map((c) => `${c.name} (${c.detail})`).join(', ')}`,
  );
  return result;
}
