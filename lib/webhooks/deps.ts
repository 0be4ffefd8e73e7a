/**
 * What the webhook service functions are built from. Its own module so fifo.ts (which service.ts calls) need not
 * import service.ts back.
 */
import type { Client } from '@temporalio/client';
import type { Pool } from '../db.js';
import type { WEBHOOK_DELIVERY_FAST_WORKFLOW, WEBHOOK_DELIVERY_WORKFLOW } from './contract.js';

export interface WebhookServiceDeps {
  pool: Pool;
  client: Client;
  taskQueue: string;
  maxPayloadBytes: number;
  /** Workflow starts one publish (or reconciler round) keeps in flight at once. */
  startConcurrency: number;
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
