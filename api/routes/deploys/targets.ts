/** Deploy targets, starting a deploy (or its dry run), and the fast manual rollback. */
import { z } from '@hono/zod-openapi';
import type { DeployService } from '../../../lib/deploys/service.js';
import { actorOf, asActor } from '../../auth.js';
import { json } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { DeployPlan, DeployTarget } from './schemas.js';

const Started = z.object({ id: z.string() });

const OverrideFreeze = z
  .object({ reason: z.string().trim().min(1).max(1000) })
  .strict()
  .optional()
  .openapi({
    description:
      "Deploy during one of the target's freeze windows anyway: the deploy then waits for another key's approval (four-eyes), which sees the reason. Outside a freeze it changes nothing",
  });

const SkipBackup = z.boolean().default(false).openapi({
  description:
    'Deploy without the pre-deploy backup; on a target that requires approval, needs deploys:approve too (and the approver sees it)',
});

const DryRunAnswer = z.object({ dryRun: z.literal(true), plan: DeployPlan }).openapi('DeployDryRun');

export function deployTargetRoutes(deploys: DeployService) {
  const router = newRouter();

  router.openapi(
    route('read', {
      method: 'get',
      path: '/deploy-targets',
      operationId: 'listDeployTargets',
      summary: 'Declared deploy targets (commands are not shown)',
      responses: { 200: { description: 'Targets', ...json(z.object({ items: z.array(DeployTarget) })) } },
    }),
    async (c) => c.json({ items: await deploys.targets() }, 200),
  );

  router.openapi(
    route('deploys:run', {
      method: 'post',
      path: '/deploys',
      operationId: 'startDeploy',
      summary:
        'Deploy a version (or bump major/minor/patch); dryRun returns the plan and changes nothing. In a freeze window: 422 naming it and its end, unless overrideFreeze',
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
                skipBackup: SkipBackup,
                overrideFreeze: OverrideFreeze,
              })
              .strict(),
          ),
        },
      },
      responses: {
        200: {
          description: 'The plan (dry run)',
          ...json(DryRunAnswer),
        },
        202: { description: 'Started', ...json(Started) },
      },
    }),
    async (c) => {
      const answer = await deploys.deploy(c.req.valid('json'), actorOf(c));
      return 'plan' in answer ? c.json(answer, 200) : c.json(answer, 202);
    },
  );

  router.openapi(
    route('deploys:run', {
      method: 'post',
      path: '/deploy-targets/{name}/promote',
      operationId: 'promoteDeployTarget',
      summary:
        "Deploy the version the target's source (promotesFrom) runs now, once it succeeded and soaked there; then the usual freeze, approval, backup and gate. 422 when it is not promotable, naming why",
      request: {
        params: z.object({ name: z.string().min(1).max(63) }),
        body: {
          required: false,
          ...json(
            z
              .object({ dryRun: z.boolean().default(false), skipBackup: SkipBackup, overrideFreeze: OverrideFreeze })
              .strict(),
          ),
        },
      },
      responses: {
        200: { description: 'The plan (dry run)', ...json(DryRunAnswer) },
        202: { description: 'Started', ...json(Started) },
      },
    }),
    async (c) => {
      // No body is a plain promote (zod's defaults apply only to a body that is there).
      type Body = { dryRun?: boolean; skipBackup?: boolean; overrideFreeze?: { reason: string } };
      const body = (c.req.valid('json') as Body | undefined) ?? {};
      const answer = await deploys.promote(
        c.req.valid('param').name,
        { dryRun: body.dryRun ?? false, skipBackup: body.skipBackup ?? false, overrideFreeze: body.overrideFreeze },
        actorOf(c),
      );
      return 'plan' in answer ? c.json(answer, 200) : c.json(answer, 202);
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
      responses: { 202: { description: 'Started', ...json(Started) } },
    }),
    async (c) => {
      const id = await deploys.rollback(c.req.valid('param').name, c.req.valid('json'), asActor(actorOf(c)));
      return c.json({ id }, 202);
    },
  );

  return router;
}
