/** The deploy family's contract. Pure: workflows import it. */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { DeployTarget, TargetSettings } from './targets.js';
import type { Actor } from '../keys/scopes.js';
import type { Bump, GateCounters } from './plan.js';

export const DEPLOY_WORKFLOW = 'deployTarget';

/** One deploy (or rollback) per target at a time: the workflow id is the lock. */
export const deployWorkflowId = (target: string) => `deploy:${target}`;
/** Dry runs never take the lock. */
export const deployPlanWorkflowId = (target: string, at: Date) =>
  `deploy-plan:${target}:${at.toISOString().replace(/[:.]/g, '-')}`;
/** The deploy's catalog id (one per run). */
export const deployCatalogId = (target: string, at: Date) =>
  `deploy:${target}:${at.toISOString().replace(/[:.]/g, '-')}`;

export type DeployStatus =
  | 'planning'
  | 'awaiting_approval'
  | 'running'
  | 'succeeded'
  | 'rolled_back'
  | 'failed'
  | 'aborted'
  | 'canceled'
  | 'rejected';

export interface DeployInput {
  /** Catalog id (`deployCatalogId`). */
  id: string;
  /** `deploy`: the full pipeline. `rollback`: a manual rollback — no approval, no backup. */
  kind: 'deploy' | 'rollback';
  /**
   * The target's name: the worker resolves its commands and settings from its own DEPLOY_TARGETS_FILE and
   * refuses a name it does not know. Runs started before this carry a snapshot object; only its name is used.
   */
  target: string | DeployTarget;
  /** `targetsDigest` of the API's targets file, recorded beside the worker's. */
  targetsDigest?: string;
  version?: string;
  bump?: Bump;
  dryRun?: boolean;
  skipBackup?: boolean;
  /** Started during a freeze window with an override: the run then needs another key's approval. */
  freezeOverride?: FreezeOverride;
  /** The key that asked (runs started before scoped keys carry only `requestedBy`, a key id). */
  requester?: Actor;
  requestedBy?: string;
  reason?: string;
  /** Set by the deploy itself when its watch window continues as new; never by a caller. */
  resume?: DeployResume;
}

/** A deploy during a freeze window, asked for anyway: which window, until when, and why. */
export interface FreezeOverride {
  window: string;
  until: string;
  reason: string;
}

export interface DeployPlan {
  target: string;
  environment: DeployTarget['environment'];
  kind: DeployInput['kind'];
  previousVersion: string | null;
  version: string;
  /** How the change is made: the deploy command with VERSION, or the rollback command. */
  command: 'deploy' | 'rollback';
  requiresApproval: boolean;
  backupDatabase: string | null;
  steps: string[];
  /** The worker's settings for the target (absent in plans made before targets were resolved by name). */
  settings?: TargetSettings;
  /** `targetsDigest` of the worker's targets file. */
  targetsDigest?: string;
}

/** The target a run is about, whatever the shape of its input. */
export const targetNameOf = (input: Pick<DeployInput, 'target'>) =>
  typeof input.target === 'string' ? input.target : input.target.name;

/**
 * What a deploy's next run needs when its watch window continues as new (its history grew long): the result so
 * far, the target's settings, and where the watch stands.
 */
export interface DeployResume {
  result: DeployResult;
  settings: TargetSettings;
  startedAt: string;
  /** Workflow time of the change (ms), for detection and recovery times. */
  changeAt: number;
  watch: { startedAtMs: number; counters: GateCounters };
  /** This run's number in the deploy's chain of runs (the first is 1). */
  run: number;
}

export interface HealthSample {
  /** `analysis`: a measurement of a metric query (lib/deploys/analysis.ts), not a health check. */
  phase: 'gate' | 'watch' | 'rollback-gate' | 'analysis';
  at: string;
  ok: boolean;
  status: number | null;
  latencyMs: number;
  versionSeen: string | null;
  error?: string;
  /** Analysis measurements: the metric, the query's value (null when there was none) and how it measured. */
  metric?: string;
  value?: number | null;
  measurement?: 'success' | 'failure' | 'inconclusive';
}

export interface CommandResult {
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  /** The last 4 KB of stdout and stderr, interleaved. */
  outputTail: string;
}

export interface Decision {
  /** The deciding key's name; `byKeyId` its id (absent in decisions made before scoped keys). */
  by: string;
  byKeyId?: string;
  at: string;
  comment?: string;
  reason?: string;
  approved: boolean;
}

export interface TimelineEntry {
  step: string;
  at: string;
  detail?: string;
}

export interface DeployResult {
  id: string;
  status: DeployStatus;
  reason?: string;
  plan?: DeployPlan;
  decision?: Decision;
  backupId?: string;
  deploy?: CommandResult;
  rollback?: CommandResult;
  /** The first and the latest samples, at most MAX_KEPT_SAMPLES (a long watch keeps its newest). */
  samples: HealthSample[];
  /** Samples taken but no longer kept (a long watch window); samples taken = samplesOmitted + samples.length. */
  samplesOmitted?: number;
  timeline: TimelineEntry[];
  /** From the change to the first failing verdict, and to the old version healthy again (ms). */
  detectionMs?: number;
  recoveryMs?: number;
}

export interface DeployProgress {
  step: string;
  status: DeployStatus;
  plan?: DeployPlan;
  samples: HealthSample[];
  samplesOmitted?: number;
  timeline: TimelineEntry[];
}

/** The deploy workflow's signature (workflows/deploys/workflow.ts implements it): for typed starts and handles. */
export type DeployWorkflow = (input: DeployInput & { backupTaskQueue?: string }) => Promise<DeployResult>;

export const deployProgressQuery = defineQuery<DeployProgress>('progress');
export const approveUpdate = defineUpdate<Decision, [{ by: string; byKeyId?: string; comment?: string }]>('approve');
export const rejectUpdate = defineUpdate<Decision, [{ by: string; byKeyId?: string; reason: string }]>('reject');

/** Four-eyes: who asked for a deploy may not approve it, unless the target allows it. */
export function selfApprovalRefused(
  input: Pick<DeployInput, 'requester' | 'freezeOverride'>,
  target: { allowSelfApproval?: boolean },
  byKeyId: string | undefined,
): string | undefined {
  if (!input.requester || byKeyId !== input.requester.keyId) return undefined;
  // A freeze override is never its requester's to approve, whatever the target allows.
  if (target.allowSelfApproval && !input.freezeOverride) return undefined;
  return `the key that requested this deploy (${input.requester.keyName}) cannot approve it: another key must (four-eyes)`;
}
