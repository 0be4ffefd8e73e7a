/** Deploy history, one deploy with its live evidence, and the decisions on it: approve, reject, cancel. */
import { z } from '@hono/zod-openapi';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Context } from 'hono';
import { approveUpdate, deployProgressQuery, rejectUpdate } from '../../../lib/deploys/contract.js';
import type { ApiDeps } from '../../deps.js';
import { actorOf } from '../../auth.js';
import { ApiError } from '../../errors.js';
import { catalogPage, Cursor, json, Limit, pageResponse } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { waitLonger } from '../../temporal-budget.js';
import { rowJson, type DeployRow, type DeployService } from './shared.js';

export function deployRunRoutes(deps: ApiDeps, service: DeployService) {
  const router = newRouter();
  const { targets, rowOr404, handleOf, runningRun } = service;

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
          const handle = await runningRun(row);
          if (handle) live = await handle.query(deployProgressQuery);
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
        const handle = await runningRun(row);
        if (!handle) throw new ApiError(409, 'conflict', `deploy ${id} is ${row.status}`);
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
