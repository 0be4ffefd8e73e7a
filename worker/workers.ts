/**
 * Builds one Temporal worker per family task queue, all sharing one workflow bundle. Used by
 * `worker/main.ts`, the dev stack and the tests alike, so tests run the same wiring as production.
 */
import { existsSync } from 'node:fs';
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
import { createBackupActivities } from '../activities/backups/index.js';
import { createDeployActivities } from '../activities/deploys/index.js';
import { createSubscriptionActivities } from '../activities/subscriptions/index.js';
import { createSystemCheckActivities } from '../activities/system-check/index.js';
import { createWebhookActivities } from '../activities/webhooks/index.js';
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

const here = path.dirname(fileURLToPath(import.meta.url));
/** `workflows/index.ts` from source (tsx), `dist/workflows/index.js` from the build. */
export const workflowsPath = path.join(
  here,
  '..',
  'workflows',
  import.meta.url.endsWith('.ts') ? 'index.ts' : 'index.js',
);
/** Where `npm run build` writes the pre-bundled workflows (dist/workflow-bundle.js). */
export const prebuiltBundlePath = path.join(here, '..', 'workflow-bundle.js');

/**
 * The workflow bundle for this process's workers: the one `npm run build` wrote when running the built code
 * (production workers start in seconds and run exactly the code that was tested), else a fresh bundle.
 */
export async function workflowBundleFor(log?: Logger): Promise<WorkflowBundleOption> {
  if (!import.meta.url.endsWith('.ts') && existsSync(prebuiltBundlePath)) {
    log?.info({ path: prebuiltBundlePath }, 'using the pre-built workflow bundle');
    return { codePath: prebuiltBundlePath };
  }
  return bundleWorkflows(log);
}

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

/** Every family (a worker process polls OPSFLOW_WORKER_FAMILIES, default all of them). */
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
        // Heartbeats reach the server at least every 5 s (the SDK's default throttle is 0.8 × the heartbeat
        // timeout, 48 s for a backup step): a cancelled backup, restore or deploy command is killed within
        // seconds, not a minute, for one small RPC per running long activity every few seconds.
        maxHeartbeatThrottleInterval: '5 seconds',
        // Bounded memory: the SDK's default cache grows with the heap limit (about 2,300 workflows per worker on a
        // 4 GB heap, × five family workers); sleeping workflows beyond the cache are replayed when they wake.
        maxCachedWorkflows: opts.deps.config.workerTuning.maxCachedWorkflows,
        maxConcurrentWorkflowTaskExecutions: opts.deps.config.workerTuning.maxConcurrentWorkflowTasks,
        maxConcurrentActivityTaskExecutions: opts.deps.config.workerTuning.maxConcurrentActivities,
      }),
    ),
  );
}
