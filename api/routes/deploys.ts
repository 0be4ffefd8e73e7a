/**
 * Deploy API: targets, start (or dry-run) a deploy, history, one deploy with live evidence, approve /
 * reject / cancel, and a fast manual rollback. The workflow id `deploy:<target>` is the per-target lock.
 */
import { z } from '@hono/zod-openapi';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import type { Context } from 'hono';
import { versionShipped } from '../../lib/deploys/history.js';
import { targetsDigest, type DeployTarget } from '../../lib/deploys/targets.js';
import { DeployTarget as DeployTargetSA, OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import {
  approveUpdate,
  DEPLOY_WORKFLOW,
  deployCatalogId,
  deployPlanWorkflowId,
  deployProgressQuery,
  deployWorkflowId,
  rejectUpdate,
  type DeployInput,
  type DeployResult,
} from '../../workflows/deploys/definitions.js';
import { DEPLOY_VERSION } from '../../workflows/deploys/plan.js';
import type { deployTarget } from '../../workflows/deploys/workflow.js';
import type { ApiDeps } from '../app.js';
import { ApiError } from '../errors.js';
import { waitLonger } from '../temporal-budget.js';
import { catalogPage, Cursor, json, Limit, pageResponse } from '../pagination.js';
import { newRouter } from '../router.js';
import { actorOf, asActor } from '../auth.js';
import { route } from '../scoped.js';

interface DeployRow {
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
  commands: unknown;
  detection_ms: number | null;
  recovery_ms: number | null;
}

const rowJson = (r: DeployRow) => ({
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
  commands: r.commands,
  detectionMs: r.detection_ms,
  recoveryMs: r.recovery_ms,
});

const targetJson = (t: DeployTarget) => ({
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

const Version = z.string().regex(DEPLOY_VERSION, 'versions are 1–128 of A-Z a-z 0-9 . _ + -');

export function deployRoutes(deps: ApiDeps) {
  const router = newRouter();
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

  router.openapi(
    route('read', {
      method: 'get',
      path: '/deploy-targets',
      operationId: 'listDeployTargets',
      summary: 'Declared deploy targets (commands are not shown)',
      responses: { 200: { description: 'Targets', ...json(z.any()) } },
    }),
    (c) => c.json({ items: [...targets.values()].map(targetJson) }, 200),
  );

  router.openapi(
    route('deploys:run', {
      method: 'post',
      path: '/deploys',
      operationId: 'startDeploy',
      summary: 'Deploy a version (or bump major/minor/patch); dryRun returns the plan and changes nothing',
      request: {
        body: {
          required: true,
          ...json(
            z
              .object({
                target: z.string().min(1).max(63),
                version: z.string().max(1000).optional(),
                bump: z.enum(['major', 'minor', 'patch']).optional(),
                dryRun: z.boolean().default(false),
                skipBackup: z.boolean().default(false),
              })
              .strict(),
          ),
        },
      },
      responses: {
        200: { description: 'The plan (dry run)', ...json(z.any()) },
        202: { description: 'Started', ...json(z.object({ id: z.string() })) },
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const target = targetOr404(body.target);
      if (body.version !== undefined && !Version.safeParse(body.version).success) {
        throw new ApiError(422, 'unprocessable', 'invalid version: 1–128 of A-Z a-z 0-9 . _ + - (it reaches a shell)');
      }
      if ((body.version === undefined) === (body.bump === undefined)) {
        throw new ApiError(422, 'unprocessable', 'give exactly one of version and bump');
      }
      const now = new Date();
      const input = inputFor(target, {
        id: deployCatalogId(target.name, now),
        kind: 'deploy',
        version: body.version,
        bump: body.bump,
        skipBackup: body.skipBackup,
        requester: asActor(actorOf(c)),
      });
      if (body.dryRun) {
        try {
          const handle = await deps.temporal.workflow.start<typeof deployTarget>(DEPLOY_WORKFLOW, {
            taskQueue: deps.queues.deploys,
            workflowId: deployPlanWorkflowId(target.name, now),
            args: [{ ...input, dryRun: true }],
            staticSummary: `dry run: deploy ${target.name}`,
          });
          const result: DeployResult = await waitLonger(deps, 60_000, () => handle.result());
          if (!result.plan) throw new ApiError(422, 'unprocessable', result.reason ?? 'no plan');
          return c.json({ dryRun: true, plan: result.plan }, 200);
        } catch (err) {
          if (err instanceof WorkflowFailedError)
            throw new ApiError(422, 'unprocessable', err.cause?.message ?? err.message);
          throw err;
        }
      }
      return c.json({ id: await start(target, input) }, 202);
    },
  );

  router.openapi(
    route('deploys:run', {
      method: 'post',
      path: '/deploy-targets/{name}/rollback',
      operationId: 'rollbackDeployTarget',
      summary:
        'Fast manual rollback: the rollback command (or the deploy command for toVersion, a version that once succeeded on this target), health-gated; no approval, no backup',
      request: {
        params: z.object({ name: z.string().min(1).max(63) }),
        body: {
          required: true,
          ...json(
            z.object({ toVersion: z.string().max(1000).optional(), reason: z.string().min(1).max(1000) }).strict(),
          ),
        },
      },
      responses: { 202: { description: 'Started', ...json(z.object({ id: z.string() })) } },
    }),
    async (c) => {
      const target = targetOr404(c.req.valid('param').name);
      const body = c.req.valid('json');
      if (body.toVersion !== undefined && !Version.safeParse(body.toVersion).success) {
        throw new ApiError(
          422,
          'unprocessable',
          'invalid toVersion: 1–128 of A-Z a-z 0-9 . _ + - (it reaches a shell)',
        );
      }
      if (body.toVersion !== undefined && !(await versionShipped(deps.pool, target.name, body.toVersion))) {
        throw new ApiError(
          422,
          'unprocessable',
          `${body.toVersion} never succeeded on ${target.name}: a rollback only returns to a version that shipped; deploy it instead (with its approval and backup)`,
          [{ path: 'toVersion', message: 'not a version that once succeeded on this target' }],
        );
      }
      const id = await start(
        target,
        inputFor(target, {
          id: deployCatalogId(target.name, new Date()),
          kind: 'rollback',
          version: body.toVersion,
          reason: body.reason,
          requester: asActor(actorOf(c)),
        }),
      );
      return c.json({ id }, 202);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/deploys',
      operationId: 'listDeploys',
      summary: 'Deploy history, newest first',
      request: {
        query: z.object({
          target: z.string().max(63).optional(),
          status: z
            .enum([
              'planning',
              'awaiting_approval',
              'running',
              'succeeded',
              'rolled_back',
              'failed',
              'aborted',
              'canceled',
              'rejected',
            ])
            .optional(),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(z.any()),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const { items, nextCursor } = await catalogPage<DeployRow>(
        deps.pool,
        'opsflow.deploys',
        { target: q.target, status: q.status },
        q,
      );
      return c.json({ items: items.map(rowJson), nextCursor }, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/deploys/{id}',
      operationId: 'getDeploy',
      summary: 'One deploy: live step and health samples while running, the full evidence after',
      request: { params: z.object({ id: z.string().min(1).max(200) }) },
      responses: { 200: { description: 'The deploy', ...json(z.any()) } },
    }),
    async (c) => {
      const row = await rowOr404(c.req.valid('param').id);
      let live: unknown = null;
      if (!row.finished_at) {
        try {
          const handle = handleOf(row);
          if ((await handle.describe()).status.name === 'RUNNING') live = await handle.query(deployProgressQuery);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }
      return c.json({ ...rowJson(row), live }, 200);
    },
  );

  async function decide(c: Context, id: string, approve: boolean, body: { comment?: string; reason?: string }) {
    const row = await rowOr404(id);
    const actor = actorOf(c);
    const target = targets.get(row.target);
    // Four-eyes, checked here for a clear 403 and again by the workflow's validator (the authority).
    if (approve && row.requested_by_key === actor.keyId && !target?.allowSelfApproval) {
      throw new ApiError(
        403,
        'forbidden',
        `the key that requested deploy ${id} (${actor.keyName}) cannot approve it: another key with deploys:approve must (four-eyes)`,
      );
    }
    const by = { by: actor.keyName, byKeyId: actor.keyId };
    try {
      const decision = approve
        ? await waitLonger(deps, 30_000, () =>
            handleOf(row).executeUpdate(approveUpdate, { args: [{ ...by, comment: body.comment }] }),
          )
        : await waitLonger(deps, 30_000, () =>
            handleOf(row).executeUpdate(rejectUpdate, { args: [{ ...by, reason: body.reason ?? '' }] }),
          );
      return c.json({ id, decision }, 200);
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError)
        throw new ApiError(409, 'conflict', err.cause?.message ?? err.message);
      if (err instanceof WorkflowNotFoundError) throw new ApiError(409, 'conflict', `deploy ${id} is ${row.status}`);
      throw err;
    }
  }

  router.openapi(
    route('deploys:approve', {
      method: 'post',
      path: '/deploys/{id}/approve',
      operationId: 'approveDeploy',
      summary:
        'Approve a deploy waiting for approval; the approving key (not the requesting one, unless the target allows it) is recorded',
      request: {
        params: z.object({ id: z.string().min(1).max(200) }),
        body: {
          required: true,
          ...json(z.object({ comment: z.string().max(2000).optional() }).strict()),
        },
      },
      responses: { 200: { description: 'Approved', ...json(z.any()) } },
    }),
    async (c) => decide(c, c.req.valid('param').id, true, c.req.valid('json')),
  );

  router.openapi(
    route('deploys:approve', {
      method: 'post',
      path: '/deploys/{id}/reject',
      operationId: 'rejectDeploy',
      summary: 'Reject a deploy waiting for approval',
      request: {
        params: z.object({ id: z.string().min(1).max(200) }),
        body: {
          required: true,
          ...json(z.object({ reason: z.string().trim().min(1).max(2000) }).strict()),
        },
      },
      responses: { 200: { description: 'Rejected', ...json(z.any()) } },
    }),
    async (c) => decide(c, c.req.valid('param').id, false, c.req.valid('json')),
  );

  router.openapi(
    route('deploys:run', {
      method: 'post',
      path: '/deploys/{id}/cancel',
      operationId: 'cancelDeploy',
      summary: 'Cancel a deploy; once its command has started, the previous version is put back',
      request: { params: z.object({ id: z.string().min(1).max(200) }) },
      responses: { 202: { description: 'Cancellation requested', ...json(z.object({ id: z.string() })) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const row = await rowOr404(id);
      try {
        const handle = handleOf(row);
        if ((await handle.describe()).status.name !== 'RUNNING')
          throw new ApiError(409, 'conflict', `deploy ${id} is ${row.status}`);
        await handle.cancel();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new ApiError(409, 'conflict', `deploy ${id} is ${row.status}`);
        throw err;
      }
      return c.json({ id }, 202);
    },
  );

  return router;
}
