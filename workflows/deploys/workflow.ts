/**
 * deployTarget — replaces deploy.sh and the pipeline's manual production approval. One run per target at a
 * time (id `deploy:<target>`): plan → approval → pre-deploy backup → deploy command → health gate → watch
 * window → (on failure) rollback command + health gate on the old version → record, email, `deploy.*` event.
 * The whole timeline and the health samples are this workflow's history and its `progress` query. A long watch
 * window continues as new when Temporal suggests it (its history grew past the server's limit), carrying the
 * result so far: the workflow id — the target's lock — stays taken, the next run goes on watching, and a
 * failure there still rolls back. The input names the target; its commands, health URL and timings come from
 * the worker's own targets file (through the plan), never from the input. Each step is its own function below;
 * the run's state and bookkeeping are in run.ts.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  executeChild,
  isCancellation,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  setCurrentDetails,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createDeployActivities } from '../../activities/deploys/index.js';
import type { TargetSettings } from '../../lib/deploys/targets.js';
import { DeployTarget as DeployTargetSA, DeployVersion, OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import { BACKUP_WORKFLOW, backupWorkflowId } from '../../lib/backups/contract.js';
import type { backupDatabase } from '../backups/workflow.js';
import type {
  CommandResult,
  DeployPlan,
  DeployResult,
  DeployResume,
  HealthSample,
} from '../../lib/deploys/contract.js';
import { gateStep, keepSample, type GateCounters } from '../../lib/deploys/plan.js';
import { analysisGate } from './analysis.js';
import { end, mark, newRun, setHandlers, setStatus, type Input, type Run } from './run.js';

type Activities = ReturnType<typeof createDeployActivities>;

const { planDeploy, recordDeploy, reportDeploy } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['DeployPlanError'] },
});

/** Patch id: runs from before continued as new only when their history ran out. */
const WATCH_CONTINUES_AS_NEW = 'deploy-watch-continues-as-new';

const record = (run: Run) =>
  recordDeploy({
    result: run.result,
    input: { ...run.input, target: run.name },
    target: { name: run.name, environment: run.environment() },
    startedAt: run.startedAt,
  });

function activitiesFor(s: TargetSettings) {
  return {
    // Commands may run for up to the target's timeout; cancellation waits until the process is killed.
    runCommand: proxyActivities<Activities>({
      startToCloseTimeout: `${s.timeoutSec + 60} seconds`,
      heartbeatTimeout: '30 seconds',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { maximumAttempts: 1 },
    }).runCommand,
    // A sample on a dead worker is retried elsewhere a few seconds after its request timeout.
    healthSample: proxyActivities<Activities>({
      startToCloseTimeout: `${s.health.requestTimeoutSec + 5} seconds`,
      retry: { maximumAttempts: 3, initialInterval: '1 second' },
    }).healthSample,
  };
}

/** Hands the watch over to a new run of this deploy (same workflow id: the target stays locked). */
async function continueWatch(run: Run, watch: DeployResume['watch']): Promise<never> {
  const next: DeployResume = {
    result: run.result,
    settings: run.t!,
    startedAt: run.startedAt,
    changeAt: run.changeAt!,
    watch,
    run: (run.resume?.run ?? 1) + 1,
  };
  run.continuing = true;
  // The memo names the deploy: the API finds the live run of a deploy by it.
  return makeContinueAsNewFunc<typeof deployTarget>({ memo: workflowInfo().memo })({ ...run.input, resume: next });
}

/**
 * Samples the health URL until the gate passes or fails (or, for the watch window, until it ends). A watch
 * resumed from the previous run goes on from where that run stood.
 */
async function healthGate(
  run: Run,
  phase: HealthSample['phase'],
  version: string,
  from?: { startedAtMs: number; counters: GateCounters },
): Promise<{ ok: boolean; reason?: string }> {
  const s = run.t!;
  const h = s.health;
  const { healthSample } = activitiesFor(s);
  if (phase !== 'watch' && h.initialDelaySec > 0) await sleep(h.initialDelaySec * 1000);
  const limitMs = (phase === 'watch' ? s.watchWindowSec : h.timeoutSec) * 1000;
  const thresholds = {
    successThreshold: phase === 'watch' ? Number.MAX_SAFE_INTEGER : h.successThreshold,
    failureThreshold: h.failureThreshold,
  };
  const start = from?.startedAtMs ?? Date.now();
  let counters = from?.counters ?? { consecutiveOk: 0, consecutiveBad: 0 };
  for (;;) {
    const sample = await healthSample({ target: run.name, phase, version });
    keepSample(run.result, sample);
    const next = gateStep(counters, sample.ok, thresholds);
    counters = next.counters;
    setCurrentDetails(
      `${phase} for ${version}: ${counters.consecutiveOk} ok / ${counters.consecutiveBad} bad in a row, last ${sample.status ?? sample.error ?? '—'}`,
    );
    if (next.verdict === 'pass') return { ok: true };
    if (next.verdict === 'fail') {
      return {
        ok: false,
        reason: `${counters.consecutiveBad} consecutive failed health checks${phase === 'watch' ? ' in the watch window' : ''} (last: ${sample.error ?? `status ${sample.status}`})`,
      };
    }
    if (Date.now() - start + h.intervalSec * 1000 > limitMs) {
      return phase === 'watch'
        ? { ok: true }
        : { ok: false, reason: `health gate did not pass within ${h.timeoutSec} s` };
    }
    await sleep(h.intervalSec * 1000);
    // Temporal suggests a new run when the history grows long (a day-long watch at 1 s would pass the
    // 51,200-event limit and be killed mid-deploy, without a rollback).
    if (phase === 'watch' && workflowInfo().continueAsNewSuggested && patched(WATCH_CONTINUES_AS_NEW)) {
      await continueWatch(run, { startedAtMs: start, counters });
    }
  }
}

/** Runs a command of the target; `to` is where it leaves the service, `from` what it replaces. */
function command(run: Run, which: 'deploy' | 'rollback', to: string, from: string | null): Promise<CommandResult> {
  const { runCommand } = activitiesFor(run.t!);
  return which === 'deploy'
    ? runCommand({ target: run.name, which, version: to, previousVersion: from })
    : runCommand({ target: run.name, which, version: from ?? '', previousVersion: to });
}

const exitOf = (r: CommandResult) => r.signal ?? `exit ${r.exitCode}`;

/** After a failure: back to the previous version, health-gated. Ends rolled_back or failed. */
async function rollBack(run: Run, failure: string): Promise<void> {
  const { result, input } = run;
  const plan = result.plan!;
  result.detectionMs = Date.now() - run.changeAt!;
  if (input.kind === 'rollback' || !plan.previousVersion) {
    const why =
      input.kind === 'rollback' ? 'a failed rollback is not rolled back' : 'no previous version to roll back to';
    return end(run, 'failed', `${failure}; ${why}`);
  }
  mark(run, 'rollback', `to ${plan.previousVersion}: ${failure}`);
  result.rollback = await command(
    run,
    run.t!.hasRollbackCommand ? 'rollback' : 'deploy',
    plan.previousVersion,
    plan.version,
  );
  if (result.rollback.exitCode !== 0) {
    return end(run, 'failed', `${failure}; rollback command failed (${exitOf(result.rollback)})`);
  }
  mark(run, 'rollback-health-gate');
  const gate = await healthGate(run, 'rollback-gate', plan.previousVersion);
  if (gate.ok) {
    result.recoveryMs = Date.now() - run.changeAt!;
    end(run, 'rolled_back', failure);
  } else {
    end(run, 'failed', `${failure}; after rollback: ${gate.reason}`);
  }
}

/** Step 1: the worker plans versions and gates from its own targets file. */
async function plan(run: Run): Promise<DeployPlan> {
  const { input, result } = run;
  mark(run, 'plan');
  const planned = await planDeploy({
    target: run.name,
    kind: input.kind,
    version: input.version,
    bump: input.bump,
    skipBackup: input.skipBackup,
    // Only when there is one: older runs' plan input stays as it was.
    ...(input.freezeOverride ? { freezeOverride: input.freezeOverride } : {}),
  });
  run.t = planned.settings ?? run.t;
  if (!run.t) {
    throw ApplicationFailure.nonRetryable(`the plan for ${run.name} carries no target settings`, 'DeployPlanError');
  }
  result.plan = planned;
  if (planned.targetsDigest) {
    const same = !input.targetsDigest || input.targetsDigest === planned.targetsDigest;
    result.timeline[0]!.detail = `targets file ${planned.targetsDigest}${same ? '' : ` (the API's is ${input.targetsDigest}: the two differ)`}`;
  }
  upsertSearchAttributes([{ key: DeployVersion, value: planned.version }]);
  return planned;
}

/** Step 2: a person's decision, when the target asks for one. False: the run ended (rejected, timed out). */
async function approval(run: Run): Promise<boolean> {
  const t = run.t!;
  setStatus(run, 'awaiting_approval');
  mark(run, 'approval', `waiting up to ${t.approvalTimeoutSec} s`);
  await record(run);
  if (!(await condition(() => run.decision !== undefined, t.approvalTimeoutSec * 1000))) {
    end(run, 'canceled', `no approval within ${t.approvalTimeoutSec} s`);
    return false;
  }
  const decision = run.decision!;
  run.result.decision = decision;
  if (!decision.approved) {
    end(run, 'rejected', `rejected by ${decision.by}: ${decision.reason}`);
    return false;
  }
  return true;
}

/** Step 3: a verified backup of the target's database, as a child run. False: it failed and nothing changed. */
async function preDeployBackup(run: Run, database: string, backupTaskQueue: string): Promise<boolean> {
  const version = run.result.plan!.version;
  mark(run, 'backup', database);
  const backup = await executeChild<typeof backupDatabase>(BACKUP_WORKFLOW, {
    taskQueue: backupTaskQueue,
    workflowId: backupWorkflowId(database, new Date()),
    args: [{ database }],
    staticSummary: `pre-deploy backup of ${database} before ${run.name} ${version}`,
  });
  run.result.backupId = backup.id;
  if (backup.status === 'verified') return true;
  end(run, 'aborted', `pre-deploy backup ${backup.id} failed: ${backup.reason ?? 'not verified'}; nothing was changed`);
  return false;
}

/** Steps 4–5: the command, then the health gate on the new version. False: it failed (and was rolled back). */
async function shipAndGate(run: Run, planned: DeployPlan): Promise<boolean> {
  mark(run, planned.command, `to ${planned.version}`);
  run.changeAt = Date.now();
  const shipped = await command(run, planned.command, planned.version, planned.previousVersion);
  run.result.deploy = shipped;
  if (shipped.exitCode !== 0) {
    await rollBack(run, `${planned.command} command failed (${exitOf(shipped)})`);
    return false;
  }
  mark(run, 'health-gate', planned.version);
  const gate = await healthGate(run, 'gate', planned.version);
  // Targets without analysis queries (every run before them) take exactly the steps they always took.
  const analysed = gate.ok && run.t!.analysis ? await analysisGate(run, planned.version, record) : gate;
  if (!analysed.ok) {
    await rollBack(run, analysed.reason!);
    return false;
  }
  return true;
}

/** The deploy up to its watch window: plan, approval, backup, command, health gate. Undefined: it ended. */
async function upToWatch(run: Run): Promise<{ version: string } | undefined> {
  const planned = await plan(run);
  if (run.input.dryRun) {
    mark(run, 'dry-run', 'nothing was changed');
    return undefined;
  }
  if (planned.requiresApproval && !(await approval(run))) return undefined;
  setStatus(run, 'running');
  await record(run);
  if (planned.backupDatabase && run.input.backupTaskQueue) {
    if (!(await preDeployBackup(run, planned.backupDatabase, run.input.backupTaskQueue))) return undefined;
  }
  if (!(await shipAndGate(run, planned))) return undefined;
  if (run.t!.watchWindowSec > 0) mark(run, 'watch', `${run.t!.watchWindowSec} s`);
  return { version: planned.version };
}

/** What ends a run early: a cancel (the service put back if it may be half-changed) or a failure. */
async function interrupted(run: Run, err: unknown): Promise<void> {
  if (isCancellation(err)) {
    run.result.reason = 'canceled';
    if (run.changeAt !== undefined) {
      // The service may be half-changed: put the previous version back whatever the cancel said.
      await CancellationScope.nonCancellable(() => rollBack(run, 'canceled during the deploy'));
      run.result.reason = `canceled; ${run.result.status === 'rolled_back' ? 'rolled back' : (run.result.reason ?? '')}`;
    }
    setStatus(run, 'canceled');
    return;
  }
  const reason = err instanceof ActivityFailure ? (err.cause?.message ?? err.message) : (err as Error).message;
  if (run.changeAt !== undefined) await CancellationScope.nonCancellable(() => rollBack(run, reason));
  else end(run, 'aborted', reason);
}

/**
 * plan → approval → pre-deploy backup → command → health gate → watch window, rolling back on a failure after the
 * change; then the outcome recorded and reported (not for a dry run, nor for a run that continues as new).
 */
export async function deployTarget(input: Input): Promise<DeployResult> {
  const run = newRun(input);
  const { result, resume } = run;
  setHandlers(run);
  if (!resume) {
    upsertSearchAttributes([
      { key: OpsKind, value: 'deploy' },
      { key: DeployTargetSA, value: run.name },
      { key: OpsStatus, value: 'planning' },
    ]);
  }
  try {
    let changed: { version: string } | undefined;
    if (resume) {
      // The row learns this run's id (cancel and live progress find it), the timeline where the watch went on.
      mark(run, 'watch', `continued in run ${resume.run} (the previous run's history was long)`);
      await record(run);
      changed = { version: result.plan!.version };
    } else {
      changed = await upToWatch(run);
      if (!changed) return result;
    }
    if (run.t!.watchWindowSec > 0) {
      const watch = await healthGate(run, 'watch', changed.version, resume?.watch);
      if (!watch.ok) {
        await rollBack(run, watch.reason!);
        return result;
      }
    }
    setStatus(run, 'succeeded');
    return result;
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    await interrupted(run, err);
    return result;
  } finally {
    if (!input.dryRun && !run.continuing) {
      await CancellationScope.nonCancellable(async () => {
        mark(run, 'done', result.status);
        await record(run);
        await reportDeploy({ result, target: run.name, environment: run.environment() });
      });
    }
  }
}
