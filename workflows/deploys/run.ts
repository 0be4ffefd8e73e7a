/**
 * One deploy run's state and the small things every step does with it: its progress query and decision updates,
 * its status (a search attribute too) and timeline. Workflow code: deterministic, no I/O.
 */
import { setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { TargetSettings } from '../../lib/deploys/targets.js';
import { OpsStatus } from '../../lib/search-attributes.js';
import {
  approveUpdate,
  deployProgressQuery,
  rejectUpdate,
  selfApprovalRefused,
  targetNameOf,
  type Decision,
  type DeployInput,
  type DeployResult,
  type DeployResume,
  type DeployStatus,
} from '../../lib/deploys/contract.js';

export type Input = DeployInput & { backupTaskQueue?: string };

/** One run of a deploy: what its steps read and write. */
export interface Run {
  input: Input;
  name: string;
  /** The worker's settings for the target, known once planned (runs from before: their input's snapshot). */
  t: TargetSettings | undefined;
  /** The target's environment as recorded and reported (`unknown` until planned, for a run with no snapshot). */
  environment(): string;
  resume: DeployResume | undefined;
  startedAt: string;
  result: DeployResult;
  step: string;
  decision: Decision | undefined;
  /** When the service was first changed (the deploy command started): from here on a failure rolls back. */
  changeAt: number | undefined;
  /** Set when this run hands over to its next one: it neither records an outcome nor reports. */
  continuing: boolean;
}

/**
 * The run's state from its input. Runs started before targets were named carry a snapshot of the target; it is
 * read here, once: its settings until the plan brings the worker's, and its environment.
 */
export function newRun(input: Input): Run {
  const snapshot = typeof input.target === 'string' ? undefined : input.target;
  const resume = input.resume;
  const run: Run = {
    input,
    name: targetNameOf(input),
    t: resume?.settings ?? (snapshot && { ...snapshot, hasRollbackCommand: snapshot.commands.rollback !== undefined }),
    environment: () => run.t?.environment ?? snapshot?.environment ?? 'unknown',
    resume,
    startedAt: resume?.startedAt ?? workflowInfo().startTime.toISOString(),
    result: resume?.result ?? { id: input.id, status: 'planning', samples: [], timeline: [] },
    step: resume ? 'watch' : 'plan',
    decision: undefined,
    changeAt: resume?.changeAt,
    continuing: false,
  };
  return run;
}

/** The progress query and the approve/reject updates (valid only while the run awaits a decision). */
export function setHandlers(run: Run): void {
  const { result } = run;
  setHandler(deployProgressQuery, () => ({
    step: run.step,
    status: result.status,
    plan: result.plan,
    samples: result.samples,
    samplesOmitted: result.samplesOmitted,
    timeline: result.timeline,
  }));
  const decide = (approved: boolean) => (d: { by: string; byKeyId?: string; comment?: string; reason?: string }) => {
    run.decision = { ...d, by: d.by.trim(), at: new Date().toISOString(), approved };
    return run.decision;
  };
  const validate = (needReason: boolean) => (d: { by?: unknown; byKeyId?: string; reason?: unknown }) => {
    if (result.status !== 'awaiting_approval' || run.decision)
      throw new Error(`deploy is ${result.status}, not awaiting approval`);
    if (typeof d.by !== 'string' || d.by.trim() === '') throw new Error('by is required');
    const refused = needReason ? undefined : selfApprovalRefused(run.input, run.t ?? {}, d.byKeyId);
    if (refused) throw new Error(refused);
    if (needReason && (typeof d.reason !== 'string' || d.reason.trim() === '')) throw new Error('reason is required');
  };
  setHandler(approveUpdate, decide(true), { validator: validate(false) });
  setHandler(rejectUpdate, decide(false), { validator: validate(true) });
}

export function setStatus(run: Run, status: DeployStatus): void {
  run.result.status = status;
  upsertSearchAttributes([{ key: OpsStatus, value: status }]);
}

/** A step begins: the timeline, the progress query and the run's details in the UI. */
export function mark(run: Run, name: string, detail?: string): void {
  run.step = name;
  run.result.timeline.push({ step: name, at: new Date().toISOString(), ...(detail ? { detail } : {}) });
  setCurrentDetails(`${name}${detail ? `: ${detail}` : ''}`);
}

/** Ends the run's step with an outcome: the status and why. */
export function end(run: Run, status: DeployStatus, reason: string): void {
  setStatus(run, status);
  run.result.reason = reason;
}
