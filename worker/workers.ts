/**
 * Builds one Temporal worker per family task queue, all sharing one workflow bundle. Used by
 * `worker/main.ts`, the dev stack and the tests alike, so tests run the same wiring as production.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bundleWorkflowCode,
  Worker,
  type NativeConnection,
  type WorkflowBundle,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { createBackupActivities } from '../activities/backups.js';
import { createDeployActivities } from '../activities/deploys.js';
import { createSubscriptionActivities } from '../activities/subscriptions.js';
import { createSystemCheckActivities } from '../activities/system-check.js';
import { createWebhookActivities } from '../activities/webhooks.js';
import type { Config } from '../lib/config.js';
import type { Pool } from '../lib/db.js';
import { temporalLogger, type Logger } from '../lib/logger.js';
import type { Mailer } from '../lib/mailer.js';
import type { Family, TaskQueues } from '../lib/task-queues.js';

export interface WorkerDeps {
  config: Config;
  pool: Pool;
  mailer: Mailer;
  log: Logger;
  /** For activities that start or signal workflows (fan-out, redrive). */
  client: Client;
  queues: TaskQueues;
}

export const workflowsPath = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'workflows', 'index.ts');

/** Bundles `workflows/` once (webpack); pass the result to every worker instead of bundling per worker. */
export async function bundleWorkflows(log?: Logger): Promise<WorkflowBundle> {
  // webpack's build report is noise at info level; keep it for LOG_LEVEL=debug.
  const quiet = log
    ? temporalLogger(log.child({ component: 'bundler' }, { level: log.isLevelEnabled('debug') ? 'debug' : 'warn' }))
    : undefined;
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: quiet });
  return { code };
}

export function activitiesFor(family: Family, deps: WorkerDeps): object {
  switch (family) {
    case 'system':
      return createSystemCheckActivities(deps);
    case 'webhooks':
      return createWebhookActivities(deps);
    case 'subscriptions':
      return createSubscriptionActivities(deps);
    case 'backups':
      return createBackupActivities(deps);
    case 'deploys':
      return createDeployActivities(deps);
    default:
      return {};
  }
}

/** The families whose task queues this process polls (all of them for now). */
export const runningFamilies: Family[] = ['system', 'webhooks', 'subscriptions', 'backups', 'deploys'];

export async function createWorkers(opts: {
  connection: NativeConnection;
  namespace: string;
  queues: TaskQueues;
  deps: WorkerDeps;
  workflowBundle: WorkflowBundleOption;
  families?: Family[];
}): Promise<Worker[]> {
  return Promise.all(
    (opts.families ?? runningFamilies).map((family) =>
      Worker.create({
        connection: opts.connection,
        namespace: opts.namespace,
        taskQueue: opts.queues[family],
        workflowBundle: opts.workflowBundle,
        activities: activitiesFor(family, opts.deps),
      }),
    ),
  );
}
