/** Deploy targets, starting a deploy (or its dry run), and the fast manual rollback. */
import { z } from '@hono/zod-openapi';
import { WorkflowFailedError } from '@temporalio/client';
import { versionShipped } from '../../../lib/deploys/history.js';
import {
  DEPLOY_WORKFLOW,
  deployCatalogId,
  deployPlanWorkflowId,
  type DeployResult,
} from '../../../lib/deploys/contract.js';
import type { deployTarget } from '../../../workflows/deploys/workflow.js';
import type { ApiDeps } from '../../deps.js';
import { actorOf, asActor } from '../../auth.js';
import { ApiError } from '../../errors.js';
import { json } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { waitLonger } from '../../temporal-budget.js';
import { targetJson, Version, type DeployService } from './shared.js';

export function deployTargetRoutes(deps: ApiDeps, service: DeployService) {
  const router = newRouter();
  const { targets, targetOr404, inputFor, start } = service;

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

  return router;
}
