/**
 * What the deploy routes share: the catalogue row and its JSON, the target's JSON, and the deploy service —
 * starting the locked workflow of a target (the workflow id `deploy:<target>` is the lock) and finding a run.
 */
import { z } from '@hono/zod-openapi';
import { WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { targetsDigest, type DeployTarget } from '../../../lib/deploys/targets.js';
import { DeployTarget as DeployTargetSA, OpsKind, OpsStatus } from '../../../lib/search-attributes.js';
import { DEPLOY_WORKFLOW, deployWorkflowId, type DeployInput } from '../../../lib/deploys/contract.js';
import { DEPLOY_VERSION } from '../../../lib/deploys/plan.js';
import type { deployTarget } from '../../../workflows/deploys/workflow.js';
import type { ApiDeps } from '../../deps.js';
import { ApiError } from '../../errors.js';
import { waitLonger } from '../../temporal-budget.js';

export interface DeployRow {
  id: string;
  workflow_id: string;
  run_id: string;
  target: string;
  environment: string;
  kind: string;
  status: string;
  version: string | null;
  previous_version: string | null;
  requested_by: string | null;
  requested_by_key: string | null;
  reason: string | null;
  decision: unknown;
  backup_id: string | null;
  started_at: Date;
  finished_at: Date | null;
  timeline: unknown;
  samples: unknown;
  samples_omitted: number;
  commands: unknown;
  detection_ms: number | null;
  recovery_ms: number | null;
}

export const rowJson = (r: DeployRow) => ({
  id: r.id,
  target: r.target,
  environment: r.environment,
  kind: r.kind,
  status: r.status,
  version: r.version,
  previousVersion: r.previous_version,
  requestedBy: r.requested_by === null ? null : { keyId: r.requested_by_key, keyName: r.requested_by },
  reason: r.reason,
  decision: r.decision,
  backupId: r.backup_id,
  startedAt: r.started_at.toISOString(),
  finishedAt: r.finished_at?.toISOString() ?? null,
  timeline: r.timeline,
  samples: r.samples,
  samplesOmitted: r.samples_omitted,
  commands: r.commands,
  detectionMs: r.detection_ms,
  recoveryMs: r.recovery_ms,
});

export const targetJson = (t: DeployTarget) => ({
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
});

/** How long a start waits for a finished deploy's workflow to close (it sends its report first). */
const RECORDED_RUN_WAIT_MS = 30_000;

export const Version = z.string().regex(DEPLOY_VERSION, 'versions are 1–128 of A-Z a-z 0-9 . _ + -');

export type DeployService = ReturnType<typeof deployService>;

export function deployService(deps: ApiDeps) {
  const targets = new Map(deps.config.deploys.targets.map((t) => [t.name, t]));
  const targetOr404 = (name: string) => {
    const t = targets.get(name);
    if (!t) throw new ApiError(404, 'not_found', `deploy target ${name} is not declared (DEPLOY_TARGETS_FILE)`);
    return t;
  };

  const digest = targetsDigest(deps.config.deploys.targets);
  /** The workflow input names the target; the worker resolves its commands from its own file. */
  const inputFor = (target: DeployTarget, rest: Omit<DeployInput, 'target' | 'targetsDigest'>): DeployInput => ({
    ...rest,
    target: target.name,
    targetsDigest: digest,
  });

  /**
   * The previous run has recorded its outcome (the row a client reads says succeeded, rolled_back, …) but is
   * still sending its report, so its workflow id — the target's lock — is still taken. Wait for it to close
   * (bounded) rather than answer 409 to a client that did what the outcome told it: the target is free.
   */
  async function waitForRecordedRun(runningId: unknown): Promise<boolean> {
    if (typeof runningId !== 'string') return false;
    const { rows } = await deps.pool.query<{ workflow_id: string; run_id: string; finished_at: Date | null }>(
      'SELECT workflow_id, run_id, finished_at FROM opsflow.deploys WHERE id = $1',
      [runningId],
    );
    const row = rows[0];
    if (!row?.finished_at) return false;
    const closed = waitLonger(deps, RECORDED_RUN_WAIT_MS, () =>
      deps.temporal.workflow.getHandle(row.workflow_id, row.run_id).result(),
    ).then(
      () => true,
      () => true,
    );
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), RECORDED_RUN_WAIT_MS)));
    try {
      return await Promise.race([closed, gaveUp]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts the locked workflow for a target; a running one means 409 with its deploy id. */
  async function start(target: DeployTarget, input: DeployInput, waited = false): Promise<string> {
    const workflowId = deployWorkflowId(target.name);
    try {
      const handle = await deps.temporal.workflow.start<typeof deployTarget>(DEPLOY_WORKFLOW, {
        taskQueue: deps.queues.deploys,
        workflowId,
        args: [{ ...input, backupTaskQueue: deps.queues.backups }],
        memo: { deployId: input.id },
        typedSearchAttributes: [
          { key: OpsKind, value: 'deploy' },
          { key: DeployTargetSA, value: target.name },
          { key: OpsStatus, value: 'planning' },
        ],
        staticSummary:
          `${input.kind} ${target.name} (${target.environment}) ${input.version ?? input.bump ?? ''}`.trim(),
      });
      await deps.pool.query(
        `INSERT INTO opsflow.deploys (id, workflow_id, run_id, target, environment, kind, status, version, requested_by,
           requested_by_key, reason, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'planning', $7, $8, $9, $10, now()) ON CONFLICT (id) DO NOTHING`,
        [
          input.id,
          workflowId,
          handle.firstExecutionRunId,
          target.name,
          target.environment,
          input.kind,
          input.version ?? null,
          input.requester?.keyName ?? null,
          input.requester?.keyId ?? null,
          input.reason ?? null,
        ],
      );
      return input.id;
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      const running = await deps.temporal.workflow.getHandle(workflowId).describe();
      const runningId = running.memo?.deployId;
      if (!waited && (await waitForRecordedRun(runningId))) return start(target, input, true);
      throw new ApiError(409, 'conflict', `a deploy of ${target.name} is already running: ${String(runningId)}`, {
        runningDeployId: runningId,
      });
    }
  }

  async function rowOr404(id: string): Promise<DeployRow> {
    const { rows } = await deps.pool.query<DeployRow>('SELECT * FROM opsflow.deploys WHERE id = $1', [id]);
    if (!rows[0]) throw new ApiError(404, 'not_found', `deploy ${id} not found`);
    return rows[0];
  }
  const handleOf = (r: DeployRow): WorkflowHandle<typeof deployTarget> =>
    deps.temporal.workflow.getHandle<typeof deployTarget>(r.workflow_id, r.run_id);

  /**
   * The deploy's run that is running now, if any. A deploy whose watch window continued as new has a newer run
   * than its row names until that run records itself (moments); the target's workflow id finds it, and its
   * memo tells that it is the same deploy (not a later one of the target).
   */
  async function runningRun(r: DeployRow): Promise<WorkflowHandle<typeof deployTarget> | undefined> {
    const handle = handleOf(r);
    const status = (await handle.describe()).status.name;
    if (status === 'RUNNING') return handle;
    if (status !== 'CONTINUED_AS_NEW') return undefined;
    const latest = await deps.temporal.workflow.getHandle(r.workflow_id).describe();
    if (latest.memo?.deployId !== r.id || latest.status.name !== 'RUNNING') return undefined;
    return deps.temporal.workflow.getHandle<typeof deployTarget>(r.workflow_id, latest.runId);
  }

  return { targets, targetOr404, inputFor, start, rowOr404, handleOf, runningRun };
}
