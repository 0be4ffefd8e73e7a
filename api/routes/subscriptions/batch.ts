/**
 * Bulk import: `POST /v1/subscriptions:batch` writes up to 1,000 subscriptions in one transaction and answers
 * with one result per item. Their workflows are started after the answer, a bounded number at a time
 * (WORKFLOW_START_CONCURRENCY); a start that does not go through (Temporal away, this process killed) is made by
 * the subscription workers' reconciler, so an accepted item is never left without its workflow.
 *
 * Idempotent by id: an item equal to its stored subscription is `unchanged` (a retried batch), one that differs
 * is refused with `conflict` — changing a subscription is PUT's job, which updates its running workflow.
 */
import { z } from '@hono/zod-openapi';
import type { ImportCandidate, SubscriptionService } from '../../../lib/subscriptions/service.js';
import { json } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { keyTenant } from '../../auth.js';
import { refKey } from '../../../lib/subscriptions/contract.js';
import { route } from '../../scoped.js';
import { IdParam, PutBody, toDetails } from './schemas.js';

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
        code: z.enum(['validation_failed', 'unprocessable', 'conflict', 'forbidden']),
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

export function subscriptionBatchRoutes(subscriptions: SubscriptionService, defaultTimezone: string) {
  const router = newRouter();
  router.openAPIRegistry.register('SubscriptionImportItem', Item);

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
      const candidates: ImportCandidate[] = [];
      const firstIndex = new Map<string, number>();
      const own = keyTenant(c); // a tenant key imports its own tenant's subscriptions only
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
        // Ids are per tenant: the same id for two tenants is two subscriptions.
        const key = refKey(parsed.data.tenantId, parsed.data.id);
        const seen = firstIndex.get(key);
        if (seen !== undefined) {
          results[index] = rejected(index, id, 'validation_failed', `id also at index ${seen} of this batch`);
          return;
        }
        if (own !== undefined && parsed.data.tenantId !== own) {
          results[index] = rejected(
            index,
            id,
            'forbidden',
            `this key is tenant ${own}'s: it cannot import for tenant ${parsed.data.tenantId}`,
          );
          return;
        }
        firstIndex.set(key, index);
        candidates.push({
          index,
          id: parsed.data.id,
          details: toDetails(parsed.data, defaultTimezone),
          allowPastExpiry: parsed.data.allowPastExpiry ?? false,
        });
      });

      const { outcomes, workflowsStarting } = await subscriptions.importBatch(candidates);
      for (const { index, id } of candidates) {
        const o = outcomes.get(index)!;
        results[index] =
          o.outcome === 'rejected' ? rejected(index, id, o.code, o.message) : { index, id, outcome: o.outcome };
      }
      const count = (o: ItemResult['outcome']) => results.filter((r) => r.outcome === o).length;
      return c.json(
        {
          created: count('created'),
          unchanged: count('unchanged'),
          rejected: count('rejected'),
          workflowsStarting,
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
