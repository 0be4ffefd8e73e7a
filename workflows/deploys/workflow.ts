/**
 * deployTarget — replaces deploy.sh and the pipeline's manual production approval. One run per target at a
 * time (id `deploy:<target>`): plan → approval → pre-deploy backup → deploy command → health gate → watch
 * window → (on failure) rollback command + health gate on the old version → record, email, `deploy.*` event.
 * The whole timeline and the health samples are this workflow's history and its `progress` query. A long watch
 * window continues as new when Temporal suggests it (its history grew past the server's limit), carrying the
 * result so far: the workflow id — the target's lock — stays taken, the next run goes on watching, and a
 * failure there still rolls back. The input names the target; its commands, health URL and timings come from the worker's own targets file
 * (through the plan), never from the input.
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
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createDeployActivities } from '../../activities/deploys/index.js';
import type { TargetSettings } from '../../lib/deploys/targets.js';
import { DeployTarget as DeployTargetSA, DeployVersion, OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import { BACKUP_WORKFLOW, backupWorkflowId } from '../../lib/backups/contract.js';
import type { backupDatabase } from '../backups/workflow.js';
import {
  approveUpdate,
  deployProgressQuery,
  rejectUpdate,
  selfApprovalRefused,
  targetNameOf,
  type CommandResult,
  type Decision,
  type DeployInput,
  type DeployResult,
  type DeployResume,
  type DeployStatus,
  type HealthSample,
} from '../../lib/deploys/contract.js';
import { gateStep, keepSample, type GateCounters } from '../../lib/deploys/plan.js';

type Activities = ReturnType<typeof createDeployActivities>;

const { planDeploy, recordDeploy, reportDeploy } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['DeployPlanError'] },
});

/** Patch id: runs from before continued as new only when their history ran out. */
const WATCH_CONTINUES_AS_NEW = 'deploy-watch-continues-as-new';

export async function deployTarget(input: DeployInput & { backupTaskQueue?: string }): Promise<DeployResult> {
  const name = targetNameOf(input);
  const snapshot = typeof input.target === 'string' ? undefined : input.target;
  const resume = input.resume;
  /** The worker's settings for the target, known once planned (runs from before: their input's snapshot). */
  let t: TargetSettings | undefined =
    resume?.settings ??
    (snapshot && {
      ...snapshot,
      hasRollbackCommand: snapshot.commands.rollback !== undefined,
    });
  const startedAt = resume?.startedAt ?? workflowInfo().startTime.toISOString();
  const result: DeployResult = resume?.result ?? { id: input.id, status: 'planning', samples: [], timeline: [] };
  let step = resume ? 'watch' : 'plan';
  /** Set when this run hands over to its next one: it neither records an outcome nor reports. */
  let continuing = false;
  let decision: Decision | undefined;

  const activitiesFor = (s: TargetSettings) => ({
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
  });

  setHandler(deployProgressQuery, () => ({
    step,
    status: result.status,
    plan: result.plan,
    samples: result.samples,
    samplesOmitted: result.samplesOmitted,
    timeline: result.timeline,
  }));
  const decide = (approved: boolean) => (d: { by: string; byKeyId?: string; comment?: string; reason?: string }) => {
    decision = { ...d, by: d.by.trim(), at: new Date().toISOString(), approved };
    return decision;
  };
  const validate = (needReason: boolean) => (d: { by?: unknown; byKeyId?: string; reason?: unknown }) => {
    if (result.status !== 'awaiting_approval' || decision)
      throw new Error(`deploy is ${result.status}, not awaiting approval`);
    if (typeof d.by !== 'string' || d.by.trim() === '') throw new Error('by is required');
    const refused = needReason ? undefined : selfApprovalRefused(input, t ?? {}, d.byKeyId);
    if (refused) throw new Error(refused);
    if (needReason && (typeof d.reason !== 'string' || d.reason.trim() === '')) throw new Error('reason is required');
  };
  setHandler(approveUpdate, decide(true), { validator: validate(false) });
  setHandler(rejectUpdate, decide(false), { validator: validate(true) });

  const setStatus = (status: DeployStatus) => {
    result.status = status;
    upsertSearchAttributes([{ key: OpsStatus, value: status }]);
  };
  const mark = (name: string, detail?: string) => {
    step = name;
    result.timeline.push({ step: name, at: new Date().toISOString(), ...(detail ? { detail } : {}) });
    setCurrentDetails(`${name}${detail ? `: ${detail}` : ''}`);
  };
  const record = () =>
    recordDeploy({
      result,
      input: { ...input, target: name },
      target: { name, environment: t?.environment ?? snapshot?.environment ?? 'unknown' },
      startedAt,
    });

  let changeAt: number | undefined = resume?.changeAt;

  /** Hands the watch over to a new run of this deploy (same workflow id: the target stays locked). */
  async function continueWatch(watch: DeployResume['watch']): Promise<never> {
    const run = (resume?.run ?? 1) + 1;
    const next: DeployResume = { result, settings: t!, startedAt, changeAt: changeAt!, watch, run };
    continuing = true;
    // The memo names the deploy: the API finds the live run of a deploy by it.
    return makeContinueAsNewFunc<typeof deployTarget>({ memo: workflowInfo().memo })({ ...input, resume: next });
  }

  /**
   * Samples the health URL until the gate passes or fails (or, for the watch window, until it ends). A watch
   * resumed from the previous run goes on from where that run stood.
   */
  async function healthGate(
    phase: HealthSample['phase'],
    version: string,
    from?: { startedAtMs: number; counters: GateCounters },
  ): Promise<{ ok: boolean; reason?: string }> {
    const s = t!;
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
      const sample = await healthSample({ target: name, phase, version });
      keepSample(result, sample);
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
        await continueWatch({ startedAtMs: start, counters });
      }
    }
  }

  /** Runs a command of the target; `to` is where it leaves the service, `from` what it replaces. */
  const command = (which: 'deploy' | 'rollback', to: string, from: string | null): Promise<CommandResult> => {
    const { runCommand } = activitiesFor(t!);
    return which === 'deploy'
      ? runCommand({ target: name, which, version: to, previousVersion: from })
      : runCommand({ target: name, which, version: from ?? '', previousVersion: to });
  };

  /** After a failure: back to the previous version, health-gated. Ends rolled_back or failed. */
  async function rollBack(failure: string): Promise<void> {
    const plan = result.plan!;
    result.detectionMs = Date.now() - changeAt!;
    if (input.kind === 'rollback' || !plan.previousVersion) {
      setStatus('failed');
      result.reason = `${failure}; ${input.kind === 'rollback' ? 'a failed rollback is not rolled back' : 'no previous version to roll back to'}`;
      return;
    }
    mark('rollback', `to ${plan.previousVersion}: ${failure}`);
    result.rollback = await command(t!.hasRollbackCommand ? 'rollback' : 'deploy', plan.previousVersion, plan.version);
    if (result.rollback.exitCode !== 0) {
      setStatus('failed');
      result.reason = `${failure}; rollback command failed (${result.rollback.signal ?? `exit ${result.rollback.exitCode}`})`;
      return;
    }
    mark('rollback-health-gate');
    const gate = await healthGate('rollback-gate', plan.previousVersion);
    if (gate.ok) {
      result.recoveryMs = Date.now() - changeAt!;
      setStatus('rolled_back');
      result.reason = failure;
    } else {
      setStatus('failed');
      result.reason = `${failure}; after rollback: ${gate.reason}`;
    }
  }

  /** The deploy up to its watch window: plan, approval, backup, command, health gate. Undefined: it ended. */
  async function upToWatch(): Promise<{ version: string } | undefined> {
    mark('plan');
    const plan = await planDeploy({
      target: name,
      kind: input.kind,
      version: input.version,
      bump: input.bump,
      skipBackup: input.skipBackup,
    });
    t = plan.settings ?? t;
    if (!t) throw ApplicationFailure.nonRetryable(`the plan for ${name} carries no target settings`, 'DeployPlanError');
    result.plan = plan;
    if (plan.targetsDigest) {
      const same = !input.targetsDigest || input.targetsDigest === plan.targetsDigest;
      result.timeline[0]!.detail = `targets file ${plan.targetsDigest}${same ? '' : ` (the API's is ${input.targetsDigest}: the two differ)`}`;
    }
    upsertSearchAttributes([{ key: DeployVersion, value: plan.version }]);
    if (input.dryRun) {
      mark('dry-run', 'nothing was changed');
      return undefined;
    }

    if (plan.requiresApproval) {
      setStatus('awaiting_approval');
      mark('approval', `waiting up to ${t.approvalTimeoutSec} s`);
      await record();
      if (!(await condition(() => decision !== undefined, t.approvalTimeoutSec * 1000))) {
        setStatus('canceled');
        result.reason = `no approval within ${t.approvalTimeoutSec} s`;
        return undefined;
      }
      result.decision = decision;
      if (!decision!.approved) {
        setStatus('rejected');
        result.reason = `rejected by ${decision!.by}: ${decision!.reason}`;
        return undefined;
      }
    }
    setStatus('running');
    await record();

    if (plan.backupDatabase && input.backupTaskQueue) {
      mark('backup', plan.backupDatabase);
      const backup = await executeChild<typeof backupDatabase>(BACKUP_WORKFLOW, {
        taskQueue: input.backupTaskQueue,
        workflowId: backupWorkflowId(plan.backupDatabase, new Date()),
        args: [{ database: plan.backupDatabase }],
        staticSummary: `pre-deploy backup of ${plan.backupDatabase} before ${name} ${plan.version}`,
      });
      result.backupId = backup.id;
      if (backup.status !== 'verified') {
        setStatus('aborted');
        result.reason = `pre-deploy backup ${backup.id} failed: ${backup.reason ?? 'not verified'}; nothing was changed`;
        return undefined;
      }
    }

    mark(plan.command, `to ${plan.version}`);
    changeAt = Date.now();
    result.deploy = await command(plan.command, plan.version, plan.previousVersion);
    if (result.deploy.exitCode !== 0) {
      await rollBack(`${plan.command} command failed (${result.deploy.signal ?? `exit ${result.deploy.exitCode}`})`);
      return undefined;
    }
    mark('health-gate', plan.version);
    const gate = await healthGate('gate', plan.version);
    if (!gate.ok) {
      await rollBack(gate.reason!);
      return undefined;
    }
    if (t.watchWindowSec > 0) mark('watch', `${t.watchWindowSec} s`);
    return { version: plan.version };
  }

  if (!resume) {
    upsertSearchAttributes([
      { key: OpsKind, value: 'deploy' },
      { key: DeployTargetSA, value: name },
      { key: OpsStatus, value: 'planning' },
    ]);
  }
  try {
    let changed: { version: string } | undefined;
    if (resume) {
      // The row learns this run's id (cancel and live progress find it), the timeline where the watch went on.
      mark('watch', `continued in run ${resume.run} (the previous run's history was long)`);
      await record();
      changed = { version: result.plan!.version };
    } else {
      changed = await upToWatch();
      if (!changed) return result;
    }
    if (t!.watchWindowSec > 0) {
      const watch = await healthGate('watch', changed.version, resume?.watch);
      if (!watch.ok) {
        await rollBack(watch.reason!);
        return result;
      }
    }
    setStatus('succeeded');
    return result;
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    if (isCancellation(err)) {
      result.reason = 'canceled';
      if (changeAt !== undefined) {
        // The service may be half-changed: put the previous version back whatever the cancel said.
        await CancellationScope.nonCancellable(() => rollBack('canceled during the deploy'));
        result.reason = `canceled; ${result.status === 'rolled_back' ? 'rolled back' : (result.reason ?? '')}`;
      }
      setStatus('canceled');
    } else {
      const reason = err instanceof ActivityFailure ? (err.cause?.message ?? err.message) : (err as Error).message;
      if (changeAt !== undefined) await CancellationScope.nonCancellable(() => rollBack(reason));
      else {
        setStatus('aborted');
        result.reason = reason;
      }
    }
    return result;
  } finally {
    if (!input.dryRun && !continuing) {
      await CancellationScope.nonCancellable(async () => {
        mark('done', result.status);
        await record();
        await reportDeploy({ result, target: name, environment: t?.environment ?? snapshot?.environment ?? 'unknown' });
      });
    }
  }
}
