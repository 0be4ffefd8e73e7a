import { randomUUID } from 'node:crypto';
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ApiDeps } from '../../deps.js';
import { resolveWebhookTarget, transportPolicy, UrlRefusedError } from '../../../lib/webhooks/ssrf.js';
import { actorOf } from '../../auth.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { ApiError } from '../../errors.js';
import { waitLonger } from '../../../lib/temporal-deadline.js';
import {
  SYSTEM_CHECK_WORKFLOW,
  type SystemCheckInput,
  type SystemCheckResult,
} from '../../../lib/system-check/contract.js';
import { OpsKind } from '../../../lib/search-attributes.js';

const CheckSchema = z.object({
  name: z.string(),
  kind: z.enum(['postgres', 'http']),
  ok: z.boolean(),
  latencyMs: z.number(),
  detail: z.string(),
});

const SystemCheckResponse = z
  .object({
    workflowId: z.string(),
    status: z.enum(['ok', 'degraded']),
    checks: z.array(CheckSchema),
    startedAt: z.string(),
    finishedAt: z.string(),
  })
  .openapi('SystemCheckResult');

const runSystemCheck = route('read', {
  method: 'get',
  path: '/system-check',
  operationId: 'runSystemCheck',
  summary: 'Run the system check now and return its result',
  responses: {
    200: {
      description: 'Per-check status and latency',
      content: { 'application/json': { schema: SystemCheckResponse } },
    },
  },
});

const SystemCheckRequest = z
  .object({
    postgres: z.boolean().optional().openapi({ description: 'Check PostgreSQL (default true)' }),
    httpUrls: z
      .array(z.url({ protocol: /^https?$/ }))
      .max(50)
      .optional()
      .openapi({
        description:
          'Health URLs to check instead of HEALTH_CHECK_URLS. URLs not configured there need the scope schedules:write and pass the SSRF guard (no private, loopback or metadata addresses unless in WEBHOOK_ALLOWED_CIDRS)',
      }),
    timeoutMs: z.number().int().min(100).max(120_000).optional().openapi({
      description: 'Per check; longer than HEALTH_CHECK_TIMEOUT_MS needs the scope schedules:write',
    }),
  })
  .strict()
  .openapi('SystemCheckRequest');

const runCustomSystemCheck = route('read', {
  method: 'post',
  path: '/system-check',
  operationId: 'runCustomSystemCheck',
  summary: 'Run the system check now with other URLs or timeout',
  request: { body: { required: true, content: { 'application/json': { schema: SystemCheckRequest } } } },
  responses: {
    200: {
      description: 'Per-check status and latency',
      content: { 'application/json': { schema: SystemCheckResponse } },
    },
  },
});

/**
 * System checks one API process waits on at once: each holds its request until the run answers (up to its timeout
 * × 4 + 60 s), so without a bound a `read` key could hold any number of requests and workflows open.
 */
export const SYSTEM_CHECKS_IN_FLIGHT = 4;

export function systemCheckRoutes(deps: ApiDeps) {
  const router = newRouter();
  let inFlight = 0;
  const transport = transportPolicy(deps.config.webhooks);
  const defaults = (): SystemCheckInput => ({
    postgres: true,
    httpUrls: deps.config.systemCheck.urls,
    timeoutMs: deps.config.systemCheck.timeoutMs,
  });

  async function run(c: Context, input: SystemCheckInput) {
    if (inFlight >= SYSTEM_CHECKS_IN_FLIGHT) {
      c.header('Retry-After', '5');
      throw new ApiError(
        429,
        'rate_limited',
        `${SYSTEM_CHECKS_IN_FLIGHT} system checks are running on this API process; try again when one has finished`,
        { retryAfterSeconds: 5 },
      );
    }
    inFlight += 1;
    try {
      return await runNow(input);
    } finally {
      inFlight -= 1;
    }
  }

  async function runNow(input: SystemCheckInput) {
    const workflowId = `system-check:api:${randomUUID()}`;
    const handle = await deps.temporal.workflow.start(SYSTEM_CHECK_WORKFLOW, {
      taskQueue: deps.queues.system,
      workflowId,
      args: [input],
      typedSearchAttributes: [{ key: OpsKind, value: 'system-check' }],
      staticSummary: 'System check requested through the API',
      // The API waits for the answer; a run nobody picks up should not linger.
      workflowExecutionTimeout: input.timeoutMs * 4 + 60_000,
    });
    let result: SystemCheckResult;
    try {
      result = (await waitLonger(deps, input.timeoutMs * 4 + 60_000, () => handle.result())) as SystemCheckResult;
    } catch (err) {
      throw new ApiError(503, 'unavailable', `System check did not complete: ${(err as Error).message}`, {
        workflowId,
      });
    }
    return { workflowId, ...result };
  }

  router.openapi(runSystemCheck, async (c) => c.json(await run(c, defaults()), 200));
  router.openapi(runCustomSystemCheck, async (c) => {
    const body = c.req.valid('json');
    const d = defaults();
    const other = (body.httpUrls ?? []).filter((u) => !d.httpUrls.includes(u));
    // A longer wait than the configured one holds the request (and a worker's slot) longer: the operator's to ask.
    if (body.timeoutMs !== undefined && body.timeoutMs > d.timeoutMs && !actorOf(c).scopes.has('schedules:write')) {
      throw new ApiError(
        403,
        'forbidden',
        `A timeout longer than HEALTH_CHECK_TIMEOUT_MS (${d.timeoutMs} ms) needs the scope schedules:write`,
        { requiredScope: 'schedules:write' },
      );
    }
    if (other.length > 0) {
      if (!actorOf(c).scopes.has('schedules:write')) {
        throw new ApiError(
          403,
          'forbidden',
          'Checking URLs other than HEALTH_CHECK_URLS needs the scope schedules:write',
          {
            requiredScope: 'schedules:write',
          },
        );
      }
      const problems: { path: string; message: string }[] = [];
      for (const url of other) {
        try {
          await resolveWebhookTarget(url, transport);
        } catch (err) {
          if (!(err instanceof UrlRefusedError)) throw err;
          problems.push({ path: `httpUrls.${body.httpUrls!.indexOf(url)}`, message: err.message });
        }
      }
      if (problems.length > 0) {
        throw new ApiError(422, 'unprocessable', `URL refused: ${problems.map((p) => p.message).join('; ')}`, problems);
      }
    }
    const input: SystemCheckInput = {
      postgres: body.postgres ?? true,
      httpUrls: body.httpUrls ?? d.httpUrls,
      timeoutMs: body.timeoutMs ?? d.timeoutMs,
    };
    return c.json(await run(c, input), 200);
  });
  return router;
}
