/**
 * Subscriptions as the API drives them: create or change one (its row, then its workflow started or updated
 * atomically), read it from its workflow, renew, cancel, list, and import a batch in one transaction whose
 * workflows start after the answer. Refusals are SubscriptionErrors.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { bulkStarts } from '../bulk-starts.js';
import type { Config } from '../config.js';
import { withTransaction, type Pool } from '../db.js';
import { ServiceError } from '../errors.js';
import type { Logger } from '../logger.js';
import { page, type CursorKey } from '../pagination.js';
import type { TaskQueues } from '../task-queues.js';
import {
  cancelUpdate,
  changeDetailsSignal,
  refKey,
  renewUpdate,
  viewQuery,
  type SubscriptionDetails,
  type SubscriptionStatus,
  type SubscriptionView,
} from './contract.js';
import { planPeriod, remindersAsKept, subscriptionView } from './planner.js';
import {
  audit,
  auditImported,
  detailsFromRow,
  insertSubscriptionRows,
  lockSubscriptionRows,
  markSubscriptionsStarted,
  recordRenewal,
  sentReminders,
  listCursorId,
  refOf,
  rowWorkflowId,
  subscriptionRow,
  subscriptionRowsPage,
  subscriptionRowsWithId,
  upsertSubscriptionRow,
  type SubscriptionFilter,
  type SubscriptionRow,
} from './rows.js';
import { startSubscriptionRows, subscriptionStart } from './start.js';

export class SubscriptionError extends ServiceError {}

export interface SubscriptionServiceDeps {
  config: Config;
  pool: Pool;
  temporal: Client;
  queues: TaskQueues;
  log: Logger;
}

/** A subscription as the list shows it: its row's details, status and last change. */
export interface SubscriptionListItem extends SubscriptionDetails {
  id: string;
  status: SubscriptionStatus;
  updatedAt: string;
}

/** One item of an import, after its own validation. */
export interface ImportCandidate {
  index: number;
  id: string;
  details: SubscriptionDetails;
  allowPastExpiry: boolean;
}

export type ImportRefusal = 'unprocessable' | 'conflict';
export type ImportOutcome =
  { outcome: 'created' | 'unchanged' } | { outcome: 'rejected'; code: ImportRefusal; message: string };

export interface ImportResult {
  /** By the candidate's index. */
  outcomes: Map<number, ImportOutcome>;
  /** Workflows being started after the answer (new rows, and earlier ones never started). */
  workflowsStarting: number;
}

const PAST_EXPIRY = 'expiresAt is in the past; send "allowPastExpiry": true to import one';

function notFound(id: string): never {
  throw new SubscriptionError('not_found', `subscription ${id} not found`);
}

/** A workflow's refusal of an update, as the caller's error. */
function updateRefused(err: unknown): never {
  if (err instanceof WorkflowUpdateFailedError) {
    const message = err.cause?.message ?? err.message;
    if (/canceled/.test(message)) throw new SubscriptionError('conflict', message);
    throw new SubscriptionError('unprocessable', message);
  }
  throw err;
}

export function createSubscriptionService(deps: SubscriptionServiceDeps) {
  const { pool, temporal } = deps;
  const taskQueue = deps.queues.subscriptions;
  const handle = (row: SubscriptionRow) => temporal.workflow.getHandle(rowWorkflowId(row));
  // One limiter for every import this process answers: the starts run after the answers, so per-call limits
  // would add up (ten batches in a row, 320 starts in flight) and slow the next answers and Temporal alike.
  const starter = {
    pool,
    client: temporal,
    taskQueue,
    concurrency: bulkStarts(deps.config.bulkStartConcurrency),
    priority: deps.config.bulkPriority,
  };

  function startOperation(
    id: string,
    details: SubscriptionDetails,
    status: SubscriptionStatus,
    legacyWorkflowId: boolean,
  ) {
    const { workflowType, options } = subscriptionStart(id, details, status, taskQueue, { legacyWorkflowId });
    return new WithStartWorkflowOperation(workflowType, {
      ...options,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    });
  }

  /** Starts a new subscription's workflow; undefined when one exists already (the caller updates it instead). */
  async function startNew(id: string, details: SubscriptionDetails): Promise<SubscriptionView | undefined> {
    const { workflowType, options } = subscriptionStart(id, details, 'active', taskQueue);
    try {
      await temporal.workflow.start(workflowType, {
        ...options,
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return undefined;
      throw err;
    }
    return subscriptionView(id, { status: 'active', details, plan: planPeriod(details), reminders: [] }, Date.now());
  }

  /**
   * Changes an existing subscription's workflow (or starts it, when it is gone: an expired subscription given a new
   * expiry): a signal, answered once Temporal has stored it — no wait for a worker, so a PUT is one RPC like a
   * create, however busy the workers are. The answer is the view the workflow will show, from the row: a new period
   * has no reminders yet; within the same period (`samePeriod`, the row before the change), the reminders it sent.
   */
  async function changeRunning(
    id: string,
    details: SubscriptionDetails,
    status: SubscriptionStatus,
    existing: SubscriptionRow | undefined,
    periodChanged: boolean,
  ): Promise<SubscriptionView> {
    const plan = planPeriod(details);
    const samePeriod = existing && !periodChanged ? existing : undefined;
    const { workflowType, options } = subscriptionStart(
      id,
      samePeriod ? detailsFromRow(samePeriod) : details,
      status,
      taskQueue,
      { legacyWorkflowId: existing?.legacy_workflow_id ?? false },
    );
    await temporal.workflow.signalWithStart(workflowType, {
      ...options,
      signal: changeDetailsSignal,
      signalArgs: [{ details, plan }],
    });
    const reminders = samePeriod
      ? remindersAsKept(
          planPeriod(detailsFromRow(samePeriod)),
          await sentReminders(pool, refOf(samePeriod), samePeriod.expires_at),
        )
      : [];
    return subscriptionView(id, { status, details, plan, reminders }, Date.now());
  }

  /**
   * The subscription an id names. Ids are per tenant: with a tenant (a tenant key's own, or the one an operator
   * names) that tenant's; an operator naming none gets the one subscription with that id, or a conflict naming the
   * tenants when several have it.
   */
  async function existingRow(id: string, tenant?: string): Promise<SubscriptionRow> {
    if (tenant !== undefined) return (await subscriptionRow(pool, { tenantId: tenant, id })) ?? notFound(id);
    const rows = await subscriptionRowsWithId(pool, id);
    if (rows.length > 1) {
      throw new SubscriptionError(
        'conflict',
        `subscription id ${id} is used by several tenants (${rows.map((r) => r.tenant_id).join(', ')}): name one with ?tenantId=`,
      );
    }
    return rows[0] ?? notFound(id);
  }

  return {
    /**
     * Creates (`created: true`) or changes a subscription. The row first — the workflow's own transitions update
     * it — then a new subscription is a plain start (one RPC, no wait for a worker) answered with the view its
     * workflow will show; an existing one (or a workflow that exists after all: a concurrent PUT, the reconciler)
     * is signalled, also one RPC (changeRunning).
     */
    async put(
      id: string,
      details: SubscriptionDetails,
      opts: { allowPastExpiry?: boolean } = {},
    ): Promise<{ view: SubscriptionView; created: boolean }> {
      // The tenant is part of the subscription's name: another tenant's "sub_1" is another subscription.
      const ref = { tenantId: details.tenantId, id };
      const existing = await subscriptionRow(pool, ref);
      if (existing?.status === 'canceled') {
        throw new SubscriptionError('conflict', `subscription ${id} is canceled; use a new id for a new subscription`);
      }
      const periodChanged = !existing || existing.expires_at.toISOString() !== details.expiresAt;
      if (periodChanged && Date.parse(details.expiresAt) <= Date.now() && !opts.allowPastExpiry) {
        throw new SubscriptionError('unprocessable', PAST_EXPIRY, [{ path: 'expiresAt', message: 'in the past' }]);
      }
      const status: SubscriptionStatus = existing && !periodChanged ? existing.status : 'active';
      await upsertSubscriptionRow(pool, id, details, status);
      const view =
        (!existing ? await startNew(id, details) : undefined) ??
        (await changeRunning(id, details, status, existing, periodChanged));
      await markSubscriptionsStarted(pool, [ref]);
      await audit(pool, ref, existing ? 'updated' : 'created', details);
      return { view, created: !existing };
    },

    /** From the workflow; a row whose workflow has not started yet answers with its details and no next action. */
    async get(id: string, tenant?: string): Promise<SubscriptionView> {
      const row = await existingRow(id, tenant);
      try {
        return await handle(row).query(viewQuery);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      return {
        subscriptionId: id,
        status: row.status,
        details: detailsFromRow(row),
        reminders: [],
        nextAction: { kind: 'none', description: 'no workflow yet: the daily sweep will start one' },
      };
    },

    /** To a later expiry: the workflow re-arms its timers, then the row follows. */
    async renew(id: string, expiresAt: string, tenant?: string): Promise<SubscriptionView> {
      const row = await existingRow(id, tenant);
      if (row.status === 'canceled') throw new SubscriptionError('conflict', `subscription ${id} is canceled`);
      if (Date.parse(expiresAt) <= row.expires_at.getTime()) {
        throw new SubscriptionError(
          'unprocessable',
          `expiresAt must be later than the current expiry ${row.expires_at.toISOString()}`,
          [{ path: 'expiresAt', message: 'not later than the current expiry' }],
        );
      }
      const current = detailsFromRow(row);
      const view = await temporal.workflow
        .executeUpdateWithStart(renewUpdate, {
          args: [{ expiresAt, plan: planPeriod({ ...current, expiresAt }) }],
          startWorkflowOperation: startOperation(id, current, row.status, row.legacy_workflow_id),
        })
        .catch(async (err: unknown) => {
          // The workflow already has exactly this expiry: a renew retried after the process died between the
          // workflow's update and the row's. Finish the row's part instead of refusing the retry.
          const at = /renewal must be later than the current expiry (\S+)/.exec(
            err instanceof WorkflowUpdateFailedError ? (err.cause?.message ?? '') : '',
          )?.[1];
          if (at && Date.parse(at) === Date.parse(expiresAt)) return handle(row).query(viewQuery);
          return updateRefused(err);
        });
      const ref = refOf(row);
      await recordRenewal(pool, ref, expiresAt);
      await audit(pool, ref, 'renewed', { from: row.expires_at.toISOString(), to: expiresAt });
      return view;
    },

    /** No further reminders; the workflow records the status on the row. */
    async cancel(id: string, reason: string | undefined, tenant?: string): Promise<SubscriptionView> {
      const row = await existingRow(id, tenant);
      if (row.status === 'canceled' || row.status === 'expired') {
        throw new SubscriptionError('conflict', `subscription ${id} is already ${row.status}`);
      }
      return temporal.workflow
        .executeUpdateWithStart(cancelUpdate, {
          args: [{ reason }],
          startWorkflowOperation: startOperation(id, detailsFromRow(row), row.status, row.legacy_workflow_id),
        })
        .catch(updateRefused);
    },

    /** A page of rows, soonest expiry first. */
    async list(filter: SubscriptionFilter, query: { after?: CursorKey; limit: number }) {
      const rows = await subscriptionRowsPage(pool, filter, query.after, query.limit);
      const { items, nextCursor } = page(
        rows.map((row) => ({ row, id: listCursorId(row) })),
        query.limit,
        (r) => r.row.expires_at,
      );
      return {
        items: items.map(({ row: r }): SubscriptionListItem => ({
          id: r.id,
          status: r.status,
          ...detailsFromRow(r),
          updatedAt: r.updated_at.toISOString(),
        })),
        nextCursor,
      };
    },

    /**
     * Writes the new items in one transaction: an item equal to its stored row is `unchanged` (a retried batch),
     * one that differs or is canceled is a conflict (PUT changes a subscription). Once committed, the workflows
     * of new rows (and of earlier rows never started) start in the background, a bounded number at a time;
     * whatever does not start now is the reconciler's.
     */
    async importBatch(candidates: ImportCandidate[]): Promise<ImportResult> {
      const outcomes = new Map<number, ImportOutcome>();
      const reject = (k: ImportCandidate, code: ImportRefusal, message: string) =>
        outcomes.set(k.index, { outcome: 'rejected', code, message });
      const toStart = await withTransaction(pool, async (client) => {
        const existing = await lockSubscriptionRows(
          client,
          candidates.map((k) => ({ tenantId: k.details.tenantId, id: k.id })),
        );
        const unstarted: SubscriptionRow[] = [];
        const fresh: ImportCandidate[] = [];
        for (const k of candidates) {
          const row = existing.get(refKey(k.details.tenantId, k.id));
          if (row?.status === 'canceled') reject(k, 'conflict', `subscription ${k.id} is canceled`);
          else if (row && isDeepStrictEqual(detailsFromRow(row), k.details)) {
            outcomes.set(k.index, { outcome: 'unchanged' });
            if (!row.workflow_started_at) unstarted.push(row);
          } else if (row) {
            reject(
              k,
              'conflict',
              `subscription ${k.id} exists with other details; PUT /v1/subscriptions/${k.id} changes it`,
            );
          } else if (Date.parse(k.details.expiresAt) <= Date.now() && !k.allowPastExpiry) {
            reject(k, 'unprocessable', PAST_EXPIRY);
          } else fresh.push(k);
        }
        if (fresh.length === 0) return unstarted;
        const inserted = await insertSubscriptionRows(client, fresh);
        const created = new Set(inserted.map((r) => refKey(r.tenant_id, r.id)));
        const isCreated = (k: ImportCandidate) => created.has(refKey(k.details.tenantId, k.id));
        for (const k of fresh) {
          if (isCreated(k)) outcomes.set(k.index, { outcome: 'created' });
          // Inserted by another request between our read and our write: send it again to learn which.
          else reject(k, 'conflict', `subscription ${k.id} was written by another request just now`);
        }
        await auditImported(
          client,
          fresh.filter(isCreated).map((k) => ({ id: k.id, details: k.details })),
        );
        return [...inserted, ...unstarted];
      });
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
      return { outcomes, workflowsStarting: toStart.length };
    },
  };
}

export type SubscriptionService = ReturnType<typeof createSubscriptionService>;
