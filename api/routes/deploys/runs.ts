/** Deploy history, one deploy with its live evidence, and the decisions on it: approve, reject, cancel. */
import { z } from '@hono/zod-openapi';
import type { DeployService } from '../../../lib/deploys/service.js';
import { actorOf } from '../../auth.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { Decision, Deploy, DeployStatus, DeployDetail } from './schemas.js';

const Id = z.object({ id: z.string().min(1).max(200) });
const Decided = z.object({ id: z.string(), decision: Decision }).openapi('DeployDecided');

export function deployRunRoutes(deploys: DeployService) {
  const router = newRouter();

  router.openapi(
    route('read', {
      method: 'get',
      path: '/deploys',
      operationId: 'listDeploys',
      summary: 'Deploy history, newest first',
      request: {
        query: z.object({
          target: z.string().max(63).optional(),
          status: DeployStatus.optional(),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(Deploy),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const page = await deploys.list(
        { target: q.target, status: q.status },
        { after: cursorKey(q.cursor), limit: q.limit },
      );
      return c.json(page, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/deploys/{id}',
      operationId: 'getDeploy',
      summary: 'One deploy: live step and health samples while running, the full evidence after',
      request: { params: Id },
      responses: { 200: { description: 'The deploy', ...json(DeployDetail) } },
    }),
    async (c) => c.json(await deploys.get(c.req.valid('param').id), 200),
  );

  router.openapi(
    route('deploys:approve', {
      method: 'post',
      path: '/deploys/{id}/approve',
      operationId: 'approveDeploy',
      summary:
        'Approve a deploy waiting for approval; the approving key (not the requesting one, unless the target allows it) is recorded',
      request: {
        params: Id,
        body: {
          required: true,
          ...json(z.object({ comment: z.string().max(2000).optional() }).strict()),
        },
      },
      responses: { 200: { description: 'Approved', ...json(Decided) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const decision = await deploys.decide(id, actorOf(c), { approve: true, comment: c.req.valid('json').comment });
      return c.json({ id, decision }, 200);
    },
  );

  router.openapi(
    route('deploys:approve', {
      method: 'post',
      path: '/deploys/{id}/reject',
      operationId: 'rejectDeploy',
      summary: 'Reject a deploy waiting for approval',
      request: {
        params: Id,
        body: {
          required: true,
          ...json(z.object({ reason: z.string().trim().min(1).max(2000) }).strict()),
        },
      },
      responses: { 200: { description: 'Rejected', ...json(Decided) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const decision = await deploys.decide(id, actorOf(c), { approve: false, reason: c.req.valid('json').reason });
      return c.json({ id, decision }, 200);
    },
  );

  router.openapi(
    route('deploys:run', {
      method: 'post',
      path: '/deploys/{id}/cancel',
      operationId: 'cancelDeploy',
      summary: 'Cancel a deploy; once its command has started, the previous version is put back',
      request: { params: Id },
      responses: { 202: { description: 'Cancellation requested', ...json(z.object({ id: z.string() })) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      await deploys.cancel(id);
      return c.json({ id }, 202);
    },
  );

  return router;
}
