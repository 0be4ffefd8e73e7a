/**
 * GET /v1/status: everything at a glance (lib/status.ts) — what `opsflow status` prints and exits on.
 * Always 200 when the API answers: `ok` and `problems` carry the verdict, so a monitor reads one document.
 */
import { z } from '@hono/zod-openapi';
import { collectStatus } from '../../../lib/status.js';
import type { ApiDeps } from '../../deps.js';
import { json } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';

const Check = z.union([z.object({ ok: z.literal(true) }), z.object({ ok: z.literal(false), error: z.string() })]);

const StatusReport = z
  .object({
    ok: z.boolean().openapi({ description: 'No problems' }),
    checkedAt: z.string(),
    problems: z.array(z.string()).openapi({ description: 'What is wrong, one sentence each' }),
    notices: z
      .array(z.string())
      .openapi({ description: 'Worth knowing, not wrong: paused schedules, running deploys' }),
    checks: z.object({ postgres: Check, temporal: Check }),
    workers: z
      .record(z.string(), z.number().nullable())
      .openapi({ description: "Pollers on each family's workflow task queue (null: Temporal unreachable)" }),
    backups: z.array(
      z.object({
        database: z.string(),
        lastVerifiedAt: z.string().nullable(),
        ageSeconds: z.number().nullable(),
        maxAgeSeconds: z.number(),
        stale: z.boolean(),
        lastBackup: z.object({ id: z.string(), status: z.string(), startedAt: z.string() }).nullable(),
      }),
    ),
    webhooks: z
      .object({
        deadLetters: z.number(),
        failingEndpoints: z.array(z.object({ id: z.string(), host: z.string(), failingSince: z.string() })),
        disabledEndpoints: z.array(
          z.object({ id: z.string(), host: z.string(), disabledAt: z.string(), reason: z.string().nullable() }),
        ),
      })
      .nullable(),
    deploys: z
      .array(
        z.object({
          id: z.string(),
          target: z.string(),
          status: z.string(),
          version: z.string().nullable(),
          startedAt: z.string(),
        }),
      )
      .nullable()
      .openapi({ description: 'Deploys not finished (running or waiting for approval)' }),
    schedules: z
      .array(z.object({ id: z.string(), paused: z.boolean(), note: z.string().nullable(), applied: z.boolean() }))
      .nullable(),
  })
  .openapi('StatusReport');

export function statusRoutes(deps: ApiDeps) {
  const router = newRouter();
  router.openapi(
    route('read', {
      method: 'get',
      path: '/status',
      operationId: 'getStatus',
      summary:
        'Everything at a glance: PostgreSQL, Temporal, workers, backup freshness, dead letters, failing endpoints, running deploys, paused schedules',
      responses: { 200: { description: 'The report (ok: false lists the problems)', ...json(StatusReport) } },
    }),
    async (c) => c.json(await collectStatus(deps), 200),
  );
  return router;
}
