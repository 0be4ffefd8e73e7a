/**
 * Subscription API. PUT creates with a plain start (answered without waiting for a worker) and updates with
 * update-with-start (one workflow per subscription, never two); reads of one subscription come from its
 * workflow, lists from PostgreSQL.
 */
import { z } from '@hono/zod-openapi';
import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { parseDuration } from '../../lib/durations.js';
import { page } from '../../lib/pagination.js';
import { detailsFromRow, type SubscriptionRow } from '../../lib/subscriptions/rows.js';
import { markSubscriptionsStarted, subscriptionStart } from '../../lib/subscriptions/start.js';
import {
  cancelUpdate,
  DEFAULT_REMINDER_OFFSETS,
  DEFAULT_SEND_AT,
  renewUpdate,
  subscriptionWorkflowId,
  updateDetailsUpdate,
  viewQuery,
  type SubscriptionDetails,
  type SubscriptionStatus,
  type SubscriptionView,
} from '../../lib/subscriptions/contract.js';
import { planPeriod, subscriptionView } from '../../lib/subscriptions/planner.js';
import type { ApiDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { Cursor, cursorKey, json, Limit, pageResponse } from '../pagination.js';
import { newRouter } from '../router.js';
import { route } from '../scoped.js';

export const IdParam = z.object({
  id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'letters, digits and . _ : - only'),
});
const Instant = z.iso.datetime({ offset: true });
const TimeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone such as Europe/Berlin');

const Offsets = z
  .array(z.string())
  .min(1)
  .max(10)
  .transform((steps, ctx) => {
    const parsed = steps.map((s) => parseDuration(s));
    parsed.forEach((ms, i) => {
      if (ms === undefined || ms <= 0)
        ctx.addIssue({ code: 'custom', path: [i], message: `"${steps[i]}" is not a positive duration` });
    });
    return parsed as number[];
  })
  .openapi({ type: 'array', items: { type: 'string' }, example: [...DEFAULT_REMINDER_OFFSETS] });

export const PutBody = z
  .object({
    tenantId: z.string().min(1).max(255),
    email: z.email(),
    name: z.string().max(255).optional(),
    plan: z.string().max(255).optional(),
    expiresAt: Instant,
    timezone: TimeZone.optional(),
    reminderOffsets: Offsets.optional(),
    sendAt: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM')
      .nullable()
      .optional(),
    graceDays: z
      .number()
      .min(0)
      .max(365)
      .optional()
      .openapi({ description: 'Days of grace after expiry (fractions allowed)' }),
    allowPastExpiry: z.boolean().optional().openapi({
      description: 'Create a subscription whose expiry has passed (an import): it goes straight to grace/expired',
    }),
  })
  .strict()
  .openapi('SubscriptionPut');

const View = z
  .object({
    subscriptionId: z.string(),
    status: z.enum(['active', 'grace', 'expired', 'canceled']),
    details: z.any(),
    reminders: z.array(
      z.object({ milestone: z.string(), urgency: z.string(), sentAt: z.string(), outcome: z.string() }),
    ),
    nextAction: z.any(),
  })
  .openapi('Subscription');

/** The workflow's details from a PUT body or a batch item (defaults filled in). */
export function toDetails(b: z.output<typeof PutBody>, defaultTimezone: string): SubscriptionDetails {
  return {
    tenantId: b.tenantId,
    email: b.email,
    name: b.name ?? null,
    plan: b.plan ?? null,
    expiresAt: new Date(b.expiresAt).toISOString(),
    timezone: b.timezone ?? defaultTimezone,
    reminderOffsetsMs: b.reminderOffsets ?? DEFAULT_REMINDER_OFFSETS.map((o) => parseDuration(o)!),
    sendAt: b.sendAt === undefined ? DEFAULT_SEND_AT : b.sendAt,
    graceDays: b.graceDays ?? 0,
  };
}

export function subscriptionRoutes(deps: ApiDeps) {
  const router = newRouter();
  const { pool } = deps;

  async function loadRow(id: string): Promise<SubscriptionRow | undefined> {
    const { rows } = await pool.query<SubscriptionRow>('SELECT * FROM opsflow.subscriptions WHERE id = $1', [id]);
    return rows[0];
  }

  function startOperation(id: string, details: SubscriptionDetails, status: SubscriptionStatus) {
    const { workflowType, options } = subscriptionStart(id, details, status, deps.queues.subscriptions);
    return new WithStartWorkflowOperation(workflowType, {
      ...options,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    });
  }

  /** Starts a new subscription's workflow; undefined when one exists already (the caller updates it instead). */
  async function startNew(id: string, details: SubscriptionDetails): Promise<SubscriptionView | undefined> {
    const { workflowType, options } = subscriptionStart(id, details, 'active', deps.queues.subscriptions);
    try {
      await deps.temporal.workflow.start(workflowType, {
        ...options,
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return undefined;
      throw err;
    }
    return subscriptionView(id, { status: 'active', details, plan: planPeriod(details), reminders: [] }, Date.now());
  }

  function updateError(err: unknown): never {
    if (err instanceof WorkflowUpdateFailedError) {
      const message = err.cause?.message ?? err.message;
      if (/canceled/.test(message)) throw new ApiError(409, 'conflict', message);
      throw new ApiError(422, 'unprocessable', message);
    }
    throw err;
  }

  router.openapi(
    route('subscriptions:write', {
      method: 'put',
      path: '/subscriptions/{id}',
      operationId: 'upsertSubscription',
      summary: 'Create (201) or update (200) a subscription; its workflow is started or updated atomically',
      request: { params: IdParam, body: { required: true, ...json(PutBody) } },
      responses: { 200: { description: 'Updated', ...json(View) }, 201: { description: 'Created', ...json(View) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const b = c.req.valid('json');
      const existing = await loadRow(id);
      if (existing?.status === 'canceled') {
        throw new ApiError(409, 'conflict', `subscription ${id} is canceled; use a new id for a new subscription`);
      }
      const expiresAt = new Date(b.expiresAt).toISOString();
      const periodChanged = !existing || existing.expires_at.toISOString() !== expiresAt;
      if (periodChanged && Date.parse(expiresAt) <= Date.now() && !b.allowPastExpiry) {
        throw new ApiError(
          422,
          'unprocessable',
          'expiresAt is in the past; send "allowPastExpiry": true to import one',
          [{ path: 'expiresAt', message: 'in the past' }],
        );
      }
      const details = toDetails(b, deps.config.timezone);
      const status: SubscriptionStatus = existing && !periodChanged ? existing.status : 'active';
      // The row first: the workflow's own transitions update it (an imported past expiry goes straight on).
      await pool.query(
        `INSERT INTO opsflow.subscriptions (id, tenant_id, email, name, plan, expires_at, timezone, reminder_offsets_ms, send_at, grace_days, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO UPDATE SET tenant_id = $2, email = $3, name = $4, plan = $5, expires_at = $6, timezone = $7,
           reminder_offsets_ms = $8, send_at = $9, grace_days = $10, status = $11, updated_at = now()`,
        [
          id,
          details.tenantId,
          details.email,
          details.name,
          details.plan,
          expiresAt,
          details.timezone,
          details.reminderOffsetsMs,
          details.sendAt,
          details.graceDays,
          status,
        ],
      );
      // A new subscription is a plain start — one RPC, no wait for a worker — answered with the view its workflow
      // will show; an existing one (or a workflow that exists after all: a concurrent PUT, the reconciler) is
      // updated, which waits for the workflow to accept the change.
      const view =
        (!existing ? await startNew(id, details) : undefined) ??
        (await deps.temporal.workflow
          .executeUpdateWithStart(updateDetailsUpdate, {
            args: [{ details, plan: planPeriod(details) }],
            startWorkflowOperation: startOperation(
              id,
              existing && !periodChanged ? detailsFromRow(existing) : details,
              status,
            ),
          })
          .catch(updateError));
      await markSubscriptionsStarted(pool, [id]);
      await pool.query(
        `INSERT INTO opsflow.subscription_audit (subscription_id, action, details) VALUES ($1, $2, $3)`,
        [id, existing ? 'updated' : 'created', JSON.stringify(details)],
      );
      return c.json(view, existing ? 200 : 201);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/subscriptions/{id}',
      operationId: 'getSubscription',
      summary: 'Status, expiry, reminders sent and the next action with its time (from the workflow)',
      request: { params: IdParam },
      responses: { 200: { description: 'The subscription', ...json(View) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      try {
        return c.json(await deps.temporal.workflow.getHandle(subscriptionWorkflowId(id)).query(viewQuery), 200);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      const row = await loadRow(id);
      if (!row) throw new ApiError(404, 'not_found', `subscription ${id} not found`);
      const view: SubscriptionView = {
        subscriptionId: id,
        status: row.status,
        details: detailsFromRow(row),
        reminders: [],
        nextAction: { kind: 'none', description: 'no workflow yet: the daily sweep will start one' },
      };
      return c.json(view, 200);
    },
  );

  router.openapi(
    route('subscriptions:write', {
      method: 'post',
      path: '/subscriptions/{id}/renew',
      operationId: 'renewSubscription',
      summary: 'Renew to a later expiry: timers re-armed, no reminder of the old period afterwards',
      request: { params: IdParam, body: { required: true, ...json(z.object({ expiresAt: Instant }).strict()) } },
      responses: { 200: { description: 'Renewed', ...json(View) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const expiresAt = new Date(c.req.valid('json').expiresAt).toISOString();
      const row = await loadRow(id);
      if (!row) throw new ApiError(404, 'not_found', `subscription ${id} not found`);
      if (row.status === 'canceled') throw new ApiError(409, 'conflict', `subscription ${id} is canceled`);
      if (Date.parse(expiresAt) <= row.expires_at.getTime()) {
        throw new ApiError(
          422,
          'unprocessable',
          `expiresAt must be later than the current expiry ${row.expires_at.toISOString()}`,
          [{ path: 'expiresAt', message: 'not later than the current expiry' }],
        );
      }
      const current = detailsFromRow(row);
      const plan = planPeriod({ ...current, expiresAt });
      const view = await deps.temporal.workflow
        .executeUpdateWithStart(renewUpdate, {
          args: [{ expiresAt, plan }],
          startWorkflowOperation: startOperation(id, current, row.status),
        })
        .catch(async (err: unknown) => {
          // The workflow already has exactly this expiry: a renew retried after the process died between the
          // workflow's update and the row's. Finish the row's part instead of refusing the retry.
          const at = /renewal must be later than the current expiry (\S+)/.exec(
            err instanceof WorkflowUpdateFailedError ? (err.cause?.message ?? '') : '',
          )?.[1];
          if (at && Date.parse(at) === Date.parse(expiresAt)) {
            return deps.temporal.workflow.getHandle(subscriptionWorkflowId(id)).query(viewQuery);
          }
          return updateError(err);
        });
      await pool.query(
        `UPDATE opsflow.subscriptions SET expires_at = $2, status = 'active', updated_at = now() WHERE id = $1`,
        [id, expiresAt],
      );
      await pool.query(
        `INSERT INTO opsflow.subscription_audit (subscription_id, action, details) VALUES ($1, 'renewed', $2)`,
        [id, JSON.stringify({ from: row.expires_at.toISOString(), to: expiresAt })],
      );
      return c.json(view, 200);
    },
  );

  router.openapi(
    route('subscriptions:write', {
      method: 'post',
      path: '/subscriptions/{id}/cancel',
      operationId: 'cancelSubscription',
      summary: 'Cancel: no further reminders, status canceled',
      request: {
        params: IdParam,
        body: { required: false, ...json(z.object({ reason: z.string().max(500).optional() }).strict()) },
      },
      responses: { 200: { description: 'Canceled', ...json(View) } },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = (c.req.valid('json') as { reason?: string } | undefined) ?? {};
      const row = await loadRow(id);
      if (!row) throw new ApiError(404, 'not_found', `subscription ${id} not found`);
      if (row.status === 'canceled' || row.status === 'expired') {
        throw new ApiError(409, 'conflict', `subscription ${id} is already ${row.status}`);
      }
      const view = await deps.temporal.workflow
        .executeUpdateWithStart(cancelUpdate, {
          args: [{ reason: body.reason }],
          startWorkflowOperation: startOperation(id, detailsFromRow(row), row.status),
        })
        .catch(updateError);
      return c.json(view, 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/subscriptions',
      operationId: 'listSubscriptions',
      summary: 'List subscriptions (from PostgreSQL), soonest expiry first',
      request: {
        query: z.object({
          status: z.enum(['active', 'grace', 'expired', 'canceled']).optional(),
          tenantId: z.string().max(255).optional(),
          expiringWithin: z
            .string()
            .optional()
            .transform((v, ctx) => {
              if (v === undefined) return undefined;
              const ms = parseDuration(v);
              if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'must be a duration such as 24h or 7d' });
              return ms;
            }),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: pageResponse(z.any(), 'A page'),
    }),
    async (c) => {
      const q = c.req.valid('query');
      const key = cursorKey(q.cursor);
      // Soonest expiry first: the keyset is (expires_at, id).
      const { rows } = await pool.query<SubscriptionRow>(
        `SELECT * FROM opsflow.subscriptions
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR tenant_id = $2)
           AND ($3::bigint IS NULL OR (expires_at > now() AND expires_at <= now() + ($3::bigint * interval '1 millisecond')))
           AND ($4::timestamptz IS NULL OR (expires_at, id) > ($4, $5))
         ORDER BY expires_at, id LIMIT $6`,
        [q.status ?? null, q.tenantId ?? null, q.expiringWithin ?? null, key?.at ?? null, key?.id ?? null, q.limit + 1],
      );
      const { items, nextCursor } = page(rows, q.limit, (r) => r.expires_at);
      return c.json(
        {
          items: items.map((r) => ({
            id: r.id,
            status: r.status,
            ...detailsFromRow(r),
            updatedAt: r.updated_at.toISOString(),
          })),
          nextCursor,
        },
        200,
      );
    },
  );

  return router;
}
