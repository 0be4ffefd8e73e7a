/** Deploy targets, starting a deploy (or its dry run), and the fast manual rollback. */
import { z } from '@hono/zod-openapi';
import type { DeployService } from '../../../lib/deploys/service.js';
import { actorOf, asActor } from '../../auth.js';
import { json } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { DeployPlan, DeployTarget } from './schemas.js';

const Started = z.object({ id: z.string() });

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
    (c) => c.json({ items: deploys.targets() }, 200),
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
                skipBackup: z.boolean().default(false).openapi({
                  description:
                    'Deploy without the pre-deploy backup; on a target that requires approval, needs deploys:approve too (and the approver sees it)',
                }),
                overrideFreeze: z
                  .object({ reason: z.string().trim().min(1).max(1000) })
                  .strict()
                  .optional()
                  .openapi({
                    description:
                      "Deploy during one of the target's freeze windows anyway: the deploy then waits for another key's approval (four-eyes), which sees the reason. Outside a freeze it changes nothing",
                  }),
              })
              .strict(),
          ),
        },
      },
      responses: {
        200: {
          description: 'The plan (dry run)',
          ...json(z.object({ dryRun: z.literal(true), plan: DeployPlan }).openapi('DeployDryRun')),
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
