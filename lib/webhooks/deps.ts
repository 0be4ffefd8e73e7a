/**
 * What the webhook service functions are built from. Its own module so fifo.ts (which service.ts calls) need not
 * import service.ts back.
 */
import { InternalConnectionLikeSymbol, type Client } from '@temporalio/client';
import { bulkStarts, type BulkStarts } from '../bulk-starts.js';
import { coalescing } from '../coalesce.js';
import type { Config } from '../config.js';
import type { Pool } from '../db.js';
import { WEBHOOK_DELIVERY_FAST_WORKFLOW, WEBHOOK_DELIVERY_WORKFLOW } from './contract.js';

export interface WebhookServiceDeps {
  pool: Pool;
  client: Client;
  taskQueue: string;
  maxPayloadBytes: number;
  /** Workflow starts one publish (or reconciler round) keeps in flight at once. */
  startConcurrency: number;
  /** The task priority of bulk work's deliveries (BULK_TASK_PRIORITY): large fan-outs, redrives, recovers, the reconciler. */
  bulkPriority: number;
  /** The process's one limiter for those deliveries' starts (BULK_START_CONCURRENCY, lib/bulk-starts.ts). */
  bulkStarts: BulkStarts;
  /** The workflow type new deliveries run (WEBHOOK_DELIVERY_PATH). */
  workflowType: typeof WEBHOOK_DELIVERY_WORKFLOW | typeof WEBHOOK_DELIVERY_FAST_WORKFLOW;
  /**
   * Ask the server to hand a fast delivery's first workflow task straight back to this process: only where the
   * client runs on the workers' own NativeConnection (`npm start`, one process), else the SDK refuses.
   */
  eagerStart: boolean;
  /**
   * Records that these deliveries' workflows exist (the reconciler skips them). Concurrent publishes share one
   * UPDATE (lib/coalesce.ts): under load one statement marks many deliveries instead of one each.
   */
  markStarted: (ids: string[]) => Promise<void>;
}

/**
 * Whether a client's connection can start workflows eagerly: the SDK marks a NativeConnection (the workers'
 * connection, which a Client can also run on) this way, and refuses `requestEagerStart` on any other.
 */
export function canStartEagerly(client: Client | undefined): boolean {
  // Undefined where an app is built only to describe itself (the OpenAPI document).
  const connection = client?.connection as
    { [InternalConnectionLikeSymbol]?: { supportsEagerStart?: boolean } } | undefined;
  return connection?.[InternalConnectionLikeSymbol]?.supportsEagerStart === true;
}

/** The service's dependencies from what every process has: config, pool, Temporal client, queues. */
export function webhookServiceDeps(
  config: Config,
  pool: Pool,
  client: Client,
  queues: { webhooks: string },
): WebhookServiceDeps {
  return {
    pool,
    client,
    taskQueue: queues.webhooks,
    maxPayloadBytes: config.webhooks.maxPayloadBytes,
    startConcurrency: config.startConcurrency,
    bulkPriority: config.bulkPriority,
    bulkStarts: bulkStarts(config.bulkStartConcurrency),
    workflowType: config.webhooks.deliveryPath === 'fast' ? WEBHOOK_DELIVERY_FAST_WORKFLOW : WEBHOOK_DELIVERY_WORKFLOW,
    eagerStart: config.webhooks.deliveryPath === 'fast' && canStartEagerly(client),
    markStarted: coalescing(async (ids: string[]) => {
      await pool.query(
        'UPDATE opsflow.webhook_deliveries SET workflow_started_at = now() WHERE id = ANY ($1) AND workflow_started_at IS NULL',
        [ids],
      );
    }),
  };
}
