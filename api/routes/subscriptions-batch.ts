/**
 * Bulk import: `POST /v1/subscriptions:batch` writes up to 1,000 subscriptions in one transaction and answers
 * with one result per item. Their workflows are started after the answer, a bounded number at a time
 * (WORKFLOW_START_CONCURRENCY); a start that does not go through (Temporal away, this process killed) is made by
 * the subscription workers' reconciler, so an accepted item is never left without its workflow.
 *
 * Idempotent by id: an item equal to its stored subscription is `unchanged` (a retried batch), one that differs
 * is refused with `conflict` — changing a subscription is PUT's job, which updates its running workflow.
 */
import { isDeepStrictEqual } from 'node:util';
import { z } from '@hono/zod-openapi';
import pLimit from 'p-limit';
import { withTransaction } from '../../lib/db.js';
import { detailsFromRow, type SubscriptionRow } from '../../lib/subscriptions/rows.js';
import { startSubscriptionRows } from '../../lib/subscriptions/start.js';
import type { SubscriptionDetails } from '../../lib/subscriptions/contract.js';
import type { ApiDeps } from '../deps.js';
import { json } from '../pagination.js';
import { newRouter } from '../router.js';
import { route } from '../scoped.js';
import { IdParam, PutBody, toDetails } from './subscriptions.js';

export const MAX_BATCH_ITEMS = 1000;

const Item = PutBody.extend({ id: IdParam.shape.id }).openapi('SubscriptionImportItem');

const BatchBody = z
  .object({
    items: z
      .array(z.unknown())
      .min(1)
      .max(MAX_BATCH_ITEMS)
      .openapi({
        description: `1 to ${MAX_BATCH_ITEMS} subscriptions; each is checked on its own and answered in results[]`,
        items: { $ref: '#/components/schemas/SubscriptionImportItem' },
      }),
  })
  .strict()
  .openapi('SubscriptionBatch');

const ItemResult = z
  .object({
    index: z.number().int(),
    id: z.string().nullable(),
    outcome: z.enum(['created', 'unchanged', 'rejected']),
    error: z
      .object({
        code: z.enum(['validation_failed', 'unprocessable', 'conflict']),
        message: z.string(),
        details: z.unknown().optional(),
      })
      .optional(),
  })
  .openapi('SubscriptionImportResult');
type ItemResult = z.infer<typeof ItemResult>;

const BatchResult = z
  .object({
    created: z.number().int(),
    unchanged: z.number().int(),
    rejected: z.number().int(),
    workflowsStarting: z.number().int().openapi({
      description: 'Workflows being started after this answer (new items, and earlier ones never started)',
    }),
    results: z.array(ItemResult),
  })
  .openapi('SubscriptionBatchResult');

interface Candidate {
  index: number;
  id: string;
  details: SubscriptionDetails;
  allowPastExpiry: boolean;
}

export function subscriptionBatchRoutes(deps: ApiDeps) {
  const router = newRouter();
  router.openAPIRegistry.register('SubscriptionImportItem', Item);
  // One limiter for every batch this process answers: the starts run after the answers, so per-request limits
  // would add up (ten batches in a row, 320 starts in flight) and slow the next answers and Temporal alike.
  const starter = {
    pool: deps.pool,
    client: deps.temporal,
    taskQueue: deps.queues.subscriptions,
    concurrency: pLimit(deps.config.startConcurrency),
  };

  router.openapi(
    route('subscriptions:write', {
      method: 'post',
      path: '/subscriptions:batch',
      operationId: 'importSubscriptions',
      summary: `Import up to ${MAX_BATCH_ITEMS} subscriptions in one transaction; one result per item, idempotent by id`,
      description:
        'New ids are created; an item equal to the stored subscription is `unchanged`; one that differs is rejected ' +
        'with `conflict` (PUT changes a subscription). Invalid items are rejected on their own, the others written. ' +
        'Workflows are started after the answer; the reconciler starts any whose start failed.',
      request: { body: { required: true, ...json(BatchBody) } },
      responses: { 200: { description: 'One result per item, in order', ...json(BatchResult) } },
    }),
    async (c) => {
      const { items } = c.req.valid('json');
      const results: ItemResult[] = [];
      const candidates: Candidate[] = [];
      const firstIndex = new Map<string, number>();
      items.forEach((raw, index) => {
        const rawId = (raw as { id?: unknown } | null)?.id;
        const id = typeof rawId === 'string' ? rawId : null;
        const parsed = Item.safeParse(raw);
        if (!parsed.success) {
          const details = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
          results[index] = {
            index,
            id,
            outcome: 'rejected',
            error: { code: 'validation_failed', message: `${details[0]!.path}: ${details[0]!.message}`, details },
          };
          return;
        }
        const seen = firstIndex.get(parsed.data.id);
        if (seen !== undefined) {
          results[index] = rejected(index, id, 'validation_failed', `id also at index ${seen} of this batch`);
          return;
        }
        firstIndex.set(parsed.data.id, index);
        candidates.push({
          index,
          id: parsed.data.id,
          details: toDetails(parsed.data, deps.config.timezone),
          allowPastExpiry: parsed.data.allowPastExpiry ?? false,
        });
      });

      const toStart = await withTransaction(deps.pool, async (client) => {
        const { rows: existingRows } = await client.query<SubscriptionRow>(
          'SELECT * FROM opsflow.subscriptions WHERE id = ANY ($1) FOR UPDATE',
          [candidates.map((k) => k.id)],
        );
        const existing = new Map(existingRows.map((r) => [r.id, r]));
        const unstarted: SubscriptionRow[] = [];
        const fresh: Candidate[] = [];
        for (const k of candidates) {
          const row = existing.get(k.id);
          if (row) {
            if (row.status === 'canceled') {
              results[k.index] = rejected(k.index, k.id, 'conflict', `subscription ${k.id} is canceled`);
            } else if (isDeepStrictEqual(detailsFromRow(row), k.details)) {
              results[k.index] = { index: k.index, id: k.id, outcome: 'unchanged' };
              if (!row.workflow_started_at) unstarted.push(row);
            } else {
              results[k.index] = rejected(
                k.index,
                k.id,
                'conflict',
                `subscription ${k.id} exists with other details; PUT /v1/subscriptions/${k.id} changes it`,
              );
            }
          } else if (Date.parse(k.details.expiresAt) <= Date.now() && !k.allowPastExpiry) {
            results[k.index] = rejected(
              k.index,
              k.id,
              'unprocessable',
              'expiresAt is in the past; send "allowPastExpiry": true to import one',
            );
          } else fresh.push(k);
        }
        if (fresh.length === 0) return unstarted;
        // One statement for the rows, one for their audit entries.
        const { rows: inserted } = await client.query<SubscriptionRow>(
          `INSERT INTO opsflow.subscriptions
             (id, tenant_id, email, name, plan, expires_at, timezone, reminder_offsets_ms, send_at, grace_days, status)
           SELECT id, tenant_id, email, name, plan, expires_at, timezone, reminder_offsets_ms, send_at, grace_days, 'active'
           FROM jsonb_to_recordset($1::jsonb) AS x(id text, tenant_id text, email text, name text, plan text,
             expires_at timestamptz, timezone text, reminder_offsets_ms bigint[], send_at text, grace_days double precision)
           ON CONFLICT (id) DO NOTHING
           RETURNING *`,
          [
            JSON.stringify(
              fresh.map(({ id, details: d }) => ({
                id,
                tenant_id: d.tenantId,
                email: d.email,
                name: d.name,
                plan: d.plan,
                expires_at: d.expiresAt,
                timezone: d.timezone,
                reminder_offsets_ms: d.reminderOffsetsMs,
                send_at: d.sendAt,
                grace_days: d.graceDays,
              })),
            ),
          ],
        );
        const created = new Set(inserted.map((r) => r.id));
        for (const k of fresh) {
          results[k.index] = created.has(k.id)
            ? { index: k.index, id: k.id, outcome: 'created' }
            : // Inserted by another request between our read and our write: send it again to learn which.
              rejected(k.index, k.id, 'conflict', `subscription ${k.id} was written by another request just now`);
        }
        await client.query(
          `INSERT INTO opsflow.subscription_audit (subscription_id, action, details)
           SELECT id, 'imported', details FROM jsonb_to_recordset($1::jsonb) AS x(id text, details jsonb)`,
          [JSON.stringify(fresh.filter((k) => created.has(k.id)).map((k) => ({ id: k.id, details: k.details })))],
        );
        return [...inserted, ...unstarted];
      });

      // Committed: the items are accepted. Their workflows start from here, in the background; whatever does not
      // start now is the reconciler's.
      if (toStart.length > 0) {
        startSubscriptionRows(starter, toStart).then(
          (r) =>
            r.error &&
            deps.log.warn(
              { err: r.error, failed: r.failed },
              'imported subscriptions whose workflow could not be started now; the reconciler starts them',
            ),
          (err: unknown) => deps.log.warn({ err }, 'imported subscriptions: starts failed; the reconciler starts them'),
        );
      }
      const count = (o: ItemResult['outcome']) => results.filter((r) => r.outcome === o).length;
      return c.json(
        {
          created: count('created'),
          unchanged: count('unchanged'),
          rejected: count('rejected'),
          workflowsStarting: toStart.length,
          results,
        },
        200,
      );
    },
  );

  return router;
}

function rejected(
  index: number,
  id: string | null,
  code: NonNullable<ItemResult['error']>['code'],
  message: string,
): ItemResult {
  return { index, id, outcome: 'rejected', error: { code, message } };
}
