/**
 * Deploys as the API and the console drive them: the declared targets, starting a deploy or a manual rollback
 * (the workflow id `deploy:<target>` is the target's lock), its dry run, reading a deploy with its live step,
 * and the decisions on it (approve, reject, cancel). Refusals are DeployErrors.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { Config } from '../config.js';
import type { Pool } from '../db.js';
import { ServiceError } from '../errors.js';
import type { Actor, Scope } from '../keys/scopes.js';
import type { CursorKey } from '../pagination.js';
import { DeployTarget as DeployTargetSA, OpsKind, OpsStatus } from '../search-attributes.js';
import type { TaskQueues } from '../task-queues.js';
import { waitLonger } from '../temporal-deadline.js';
import type { TemporalProbe } from '../temporal-probe.js';
import {
  approveUpdate,
  DEPLOY_WORKFLOW,
  deployCatalogId,
  deployPlanWorkflowId,
  deployProgressQuery,
  deployWorkflowId,
  rejectUpdate,
  type Decision,
  type DeployInput,
  type DeployPlan,
  type DeployProgress,
  type DeployResult,
  type DeployStatus,
  type DeployWorkflow,
} from './contract.js';
import { DEPLOY_VERSION, type Bump } from './plan.js';
import {
  deployPage,
  deployRow,
  deployView,
  insertStartedDeploy,
  promotionEvidence,
  runningVersion,
  versionShipped,
  type DeployRow,
  type DeployView,
} from './rows.js';
import { activeFreeze } from './freeze.js';
import { refusalOf, standingOf } from './promotion.js';
import { promotionView, targetView, type DeployTargetView, type PromotionView } from './target-view.js';
import { targetsDigest, type DeployTarget } from './targets.js';

export class DeployError extends ServiceError {}

export interface DeployServiceDeps {
  config: Config;
  pool: Pool;
  temporal: Client;
  queues: TaskQueues;
  probe?: TemporalProbe;
}

/** How long a start waits for a finished deploy's workflow to close (it sends its report first). */
const RECORDED_RUN_WAIT_MS = 30_000;
/** How long a dry run's plan and a decision may take. */
const PLAN_WAIT_MS = 60_000;
const DECISION_WAIT_MS = 30_000;

/** The version rule of a deploy or rollback request (a version reaches a shell). */
function checkVersion(field: string, version: string | undefined): void {
  if (version !== undefined && !DEPLOY_VERSION.test(version)) {
    throw new DeployError('unprocessable', `invalid ${field}: 1–128 of A-Z a-z 0-9 . _ + - (it reaches a shell)`);
  }
}

export function createDeployService(deps: DeployServiceDeps) {
  const targets = new Map(deps.config.deploys.targets.map((t) => [t.name, t]));
  const declared = (name: string) => {
    const t = targets.get(name);
    if (!t) throw new DeployError('not_found', `deploy target ${name} is not declared (DEPLOY_TARGETS_FILE)`);
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
   * (bounded) rather than refuse a client that did what the outcome told it: the target is free.
   */
  async function waitForRecordedRun(runningId: unknown): Promise<boolean> {
    if (typeof runningId !== 'string') return false;
    const row = await deployRow(deps.pool, runningId);
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

  /** Starts the locked workflow for a target; a running one is a conflict naming its deploy id. */
  async function start(target: DeployTarget, input: DeployInput, waited = false): Promise<string> {
    const workflowId = deployWorkflowId(target.name);
    try {
      const handle = await deps.temporal.workflow.start<DeployWorkflow>(DEPLOY_WORKFLOW, {
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
      await insertStartedDeploy(deps.pool, {
        input,
        workflowId,
        runId: handle.firstExecutionRunId,
        target: target.name,
        environment: target.environment,
      });
      return input.id;
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      const running = await deps.temporal.workflow.getHandle(workflowId).describe();
      const runningId = running.memo?.deployId;
      if (!waited && (await waitForRecordedRun(runningId))) return start(target, input, true);
      throw new DeployError('conflict', `a deploy of ${target.name} is already running: ${String(runningId)}`, {
        runningDeployId: runningId,
      });
    }
  }

  /** The plan a deploy would follow, from a dry run of the workflow (it takes no lock and changes nothing). */
  async function plan(target: DeployTarget, input: DeployInput, at: Date): Promise<DeployPlan> {
    try {
      const handle = await deps.temporal.workflow.start<DeployWorkflow>(DEPLOY_WORKFLOW, {
        taskQueue: deps.queues.deploys,
        workflowId: deployPlanWorkflowId(target.name, at),
        args: [{ ...input, dryRun: true }],
        staticSummary: `dry run: deploy ${target.name}`,
      });
      const result: DeployResult = await waitLonger(deps, PLAN_WAIT_MS, () => handle.result());
      if (!result.plan) throw new DeployError('unprocessable', result.reason ?? 'no plan');
      return result.plan;
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw new DeployError('unprocessable', err.cause?.message ?? err.message);
      throw err;
    }
  }

  async function rowOrNotFound(id: string): Promise<DeployRow> {
    const row = await deployRow(deps.pool, id);
    if (!row) throw new DeployError('not_found', `deploy ${id} not found`);
    return row;
  }
  const handleOf = (r: DeployRow): WorkflowHandle<DeployWorkflow> =>
    deps.temporal.workflow.getHandle<DeployWorkflow>(r.workflow_id, r.run_id);

  /**
   * The deploy's run that is running now, if any. A deploy whose watch window continued as new has a newer run
   * than its row names until that run records itself (moments); the target's workflow id finds it, and its
   * memo tells that it is the same deploy (not a later one of the target).
   */
  async function runningRun(r: DeployRow): Promise<WorkflowHandle<DeployWorkflow> | undefined> {
    const handle = handleOf(r);
    const status = (await handle.describe()).status.name;
    if (status === 'RUNNING') return handle;
    if (status !== 'CONTINUED_AS_NEW') return undefined;
    const latest = await deps.temporal.workflow.getHandle(r.workflow_id).describe();
    if (latest.memo?.deployId !== r.id || latest.status.name !== 'RUNNING') return undefined;
    return deps.temporal.workflow.getHandle<DeployWorkflow>(r.workflow_id, latest.runId);
  }

  /** A promoted target takes only an explicit version that is good on its source (422 naming why not). */
  async function checkPromotion(target: DeployTarget, req: { version?: string }, now: Date): Promise<void> {
    if (req.version === undefined) {
      throw new DeployError(
        'unprocessable',
        `${target.name} promotes from ${target.promotesFrom}: give the version (or POST /v1/deploy-targets/${target.name}/promote), not a bump`,
        [{ path: 'bump', message: 'a promoted target takes versions from its source' }],
      );
    }
    const evidence = await promotionEvidence(deps.pool, target.promotesFrom!, req.version);
    const refusal = refusalOf(target, standingOf(req.version, evidence, target.soakSec, now));
    if (refusal) throw new DeployError('unprocessable', refusal, [{ path: 'version', message: refusal }]);
  }

  const service = {
    /** The declared targets; a promoted one with its pipeline (what its source runs and whether it may come). */
    async targets(): Promise<(DeployTargetView & { promotion: PromotionView | null })[]> {
      const now = new Date();
      return Promise.all(
        [...targets.values()].map(async (t) => ({
          ...targetView(t),
          promotion: await promotionView(deps.pool, t, now),
        })),
      );
    },

    /**
     * Deploys the version the target's source runs now, when it is good there (succeeded, soaked, not rolled back):
     * the usual deploy from then on (freeze, approval, backup, gate).
     */
    async promote(
      name: string,
      req: { dryRun: boolean; skipBackup: boolean; overrideFreeze?: { reason: string } },
      requester: Actor & { scopes: ReadonlySet<Scope> },
    ): Promise<{ id: string } | { dryRun: true; plan: DeployPlan }> {
      const target = declared(name);
      if (!target.promotesFrom) {
        throw new DeployError(
          'unprocessable',
          `${target.name} promotes from no target (promotesFrom is not set): deploy a version to it instead`,
        );
      }
      const version = await runningVersion(deps.pool, target.promotesFrom);
      if (!version) {
        throw new DeployError(
          'unprocessable',
          `nothing has been deployed to ${target.promotesFrom} yet: nothing to promote`,
        );
      }
      return service.deploy({ target: target.name, version, ...req }, requester);
    },

    async list(filters: { target?: string; status?: DeployStatus }, query: { after?: CursorKey; limit: number }) {
      const { items, nextCursor } = await deployPage(deps.pool, filters, query);
      return { items: items.map(deployView), nextCursor };
    },

    /** One deploy, with its live step and samples while its workflow runs. */
    async get(id: string): Promise<DeployView & { live: DeployProgress | null }> {
      const row = await rowOrNotFound(id);
      let live: DeployProgress | null = null;
      if (!row.finished_at) {
        try {
          const handle = await runningRun(row);
          if (handle) live = await handle.query(deployProgressQuery);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }
      return { ...deployView(row), live };
    },

    /** A deploy of a version (or a bump): started, or with `dryRun` its plan and nothing changed. */
    async deploy(
      req: {
        target: string;
        version?: string;
        bump?: Bump;
        dryRun: boolean;
        skipBackup: boolean;
        overrideFreeze?: { reason: string };
      },
      requester: Actor & { scopes: ReadonlySet<Scope> },
    ): Promise<{ id: string } | { dryRun: true; plan: DeployPlan }> {
      const target = declared(req.target);
      // A freeze refuses deploys (dry runs too: they say what would happen); an override with a reason goes to an
      // approver instead, four-eyes, whatever the target's own approval settings. Rollbacks are never frozen.
      const now = new Date();
      const freeze = activeFreeze(target, now);
      if (target.promotesFrom) await checkPromotion(target, req, now);
      if (freeze && !req.overrideFreeze) {
        throw new DeployError(
          'unprocessable',
          `${target.name} is frozen: window ${freeze.describe} until ${freeze.until.toISOString()}; deploy after it, or give overrideFreeze {"reason": "…"} for another key's approval`,
          [{ path: 'overrideFreeze', message: `frozen until ${freeze.until.toISOString()} (${freeze.window})` }],
        );
      }
      // Skipping the safety net of a guarded target is an approver's call, and the approver is shown it.
      if (req.skipBackup && target.requiresApproval && !requester.scopes.has('deploys:approve')) {
        throw new DeployError(
          'forbidden',
          `${target.name} requires approval: skipping its pre-deploy backup needs the scope deploys:approve too`,
          { requiredScope: 'deploys:approve' },
        );
      }
      checkVersion('version', req.version);
      if ((req.version === undefined) === (req.bump === undefined)) {
        throw new DeployError('unprocessable', 'give exactly one of version and bump');
      }
      const input = inputFor(target, {
        id: deployCatalogId(target.name, now),
        kind: 'deploy',
        version: req.version,
        bump: req.bump,
        skipBackup: req.skipBackup,
        requester: { keyId: requester.keyId, keyName: requester.keyName },
        ...(freeze && req.overrideFreeze
          ? {
              freezeOverride: {
                window: freeze.window,
                until: freeze.until.toISOString(),
                reason: req.overrideFreeze.reason.trim(),
              },
            }
          : {}),
      });
      if (req.dryRun) return { dryRun: true, plan: await plan(target, input, now) };
      return { id: await start(target, input) };
    },

    /** The fast manual rollback: to `toVersion` (a version that once succeeded here) or to what ran before. */
    async rollback(name: string, req: { toVersion?: string; reason: string }, requester: Actor): Promise<string> {
      const target = declared(name);
      checkVersion('toVersion', req.toVersion);
      if (req.toVersion !== undefined && !(await versionShipped(deps.pool, target.name, req.toVersion))) {
        throw new DeployError(
          'unprocessable',
          `${req.toVersion} never succeeded on ${target.name}: a rollback only returns to a version that shipped; deploy it instead (with its approval and backup)`,
          [{ path: 'toVersion', message: 'not a version that once succeeded on this target' }],
        );
      }
      return start(
        target,
        inputFor(target, {
          id: deployCatalogId(target.name, new Date()),
          kind: 'rollback',
          version: req.toVersion,
          reason: req.reason,
          requester,
        }),
      );
    },

    /** Approve or reject a deploy waiting for approval; four-eyes is checked here and by the workflow. */
    async decide(
      id: string,
      actor: { keyId: string; keyName: string },
      d: { approve: true; comment?: string } | { approve: false; reason: string },
    ): Promise<Decision> {
      const row = await rowOrNotFound(id);
      const target = targets.get(row.target);
      // A freeze override is never its requester's to approve, whatever the target allows.
      if (d.approve && row.requested_by_key === actor.keyId && (!target?.allowSelfApproval || row.freeze_override)) {
        throw new DeployError(
          'forbidden',
          `the key that requested deploy ${id} (${actor.keyName}) cannot approve it: another key with deploys:approve must (four-eyes)`,
        );
      }
      const by = { by: actor.keyName, byKeyId: actor.keyId };
      try {
        return d.approve
          ? await waitLonger(deps, DECISION_WAIT_MS, () =>
              handleOf(row).executeUpdate(approveUpdate, { args: [{ ...by, comment: d.comment }] }),
            )
          : await waitLonger(deps, DECISION_WAIT_MS, () =>
              handleOf(row).executeUpdate(rejectUpdate, { args: [{ ...by, reason: d.reason }] }),
            );
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError)
          throw new DeployError('conflict', err.cause?.message ?? err.message);
        if (err instanceof WorkflowNotFoundError) throw new DeployError('conflict', `deploy ${id} is ${row.status}`);
        throw err;
      }
    },

    /** Cancels a running deploy (once its command has started, the previous version is put back). */
    async cancel(id: string): Promise<void> {
      const row = await rowOrNotFound(id);
      try {
        const handle = await runningRun(row);
        if (!handle) throw new DeployError('conflict', `deploy ${id} is ${row.status}`);
        await handle.cancel();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new DeployError('conflict', `deploy ${id} is ${row.status}`);
        throw err;
      }
    },
  };
  return service;
}

export type DeployService = ReturnType<typeof createDeployService>;
