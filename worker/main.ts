/**
 * The worker process: connects to Temporal, bundles the workflows once, applies the declared schedules,
 * and polls one task queue per family until SIGINT/SIGTERM, then drains (in-flight activities finish).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { loadConfigOrExit, type Config } from '../lib/config.js';
import { createPool, migrate } from '../lib/db.js';
import { createLogger, temporalLogger, type Logger } from '../lib/logger.js';
import { createMailer } from '../lib/mailer.js';
import { createSecretBox, encryptStoredSecrets, plaintextHeldUntil } from '../lib/secret-box.js';
import { onShutdownSignal } from '../lib/signals.js';
import { taskQueues } from '../lib/task-queues.js';
import { connectClient, connectWorker, temporalSettings } from '../lib/temporal.js';
import { webhookServiceDeps } from '../lib/webhooks/service.js';
import { startDeliveryReconciler, startSubscriptionReconciler } from './reconciler.js';
import { bulkStarts } from '../lib/bulk-starts.js';
import { declareSchedules } from '../lib/schedules/declarations.js';
import { applySchedules } from './schedules.js';
import { createWorkers, workflowBundleFor } from './workers.js';

export interface RunningWorkers {
  workers: Worker[];
  /** Resolves when every worker has stopped (after shutdown(), or on a fatal error). */
  done: Promise<void>;
  shutdown(): Promise<void>;
  /** The workers' connection: an API in the same process runs its client on it to start deliveries eagerly. */
  connection: NativeConnection;
}

let runtimeInstalled = false;

export async function runWorkers(opts: {
  config: Config;
  log: Logger;
  temporalAddress?: string;
}): Promise<RunningWorkers> {
  const { config, log } = opts;
  if (!runtimeInstalled) {
    // Signals are handled by our own shutdown path, so the order (API, then workers, then DB) is ours.
    Runtime.install({
      logger: temporalLogger(log.child({ component: 'temporal' })),
      shutdownSignals: [],
      // The SDK's own metrics (task latencies, slots, polls, failures) for Prometheus, when configured.
      ...(config.workerMetricsAddress
        ? { telemetryOptions: { metrics: { prometheus: { bindAddress: config.workerMetricsAddress } } } }
        : {}),
    });
    runtimeInstalled = true;
  }
  const settings = temporalSettings(config, opts.temporalAddress);
  const secrets = createSecretBox(config.encryption); // refuses to start without a key, before any work
  const pool = createPool(config.databaseUrl, config.databasePoolMax);
  await migrate(pool, log);
  await encryptStoredSecrets(pool, secrets, log);
  // Plaintext held back for a rolling upgrade's previous release (plaintextUntilSettled) is encrypted once it settles.
  const heldUntil = await plaintextHeldUntil(pool);
  const settleTimer = heldUntil
    ? setTimeout(
        () =>
          void encryptStoredSecrets(pool, secrets, log).catch((err: unknown) =>
            log.warn({ err }, 'stored values not encrypted now; the next worker start does it'),
          ),
        heldUntil.getTime() - Date.now() + 1000,
      ).unref()
    : undefined;
  const mailer = createMailer({
    smtpUrl: config.mail.smtpUrl,
    from: config.mail.from,
    outboxDir: path.join(config.dataDir, 'outbox'),
    log,
  });
  const queues = taskQueues(config.taskQueuePrefix);

  const client = await connectClient(settings);
  await applySchedules(client, declareSchedules(config, queues), log);

  const connection = await connectWorker(settings);
  const workflowBundle = await workflowBundleFor(log);
  const workers = await createWorkers({
    connection,
    namespace: settings.namespace,
    queues,
    deps: { config, pool, mailer, log, client, queues },
    workflowBundle,
    families: config.workerFamilies,
  });
  const done = Promise.all(workers.map((w) => w.run())).then(() => undefined);
  const reconciler = config.workerFamilies.includes('webhooks')
    ? startDeliveryReconciler(webhookServiceDeps(config, pool, client, queues), log, {
        intervalMs: config.webhooks.reconcileIntervalMs,
        olderThanMs: config.webhooks.reconcileIntervalMs,
        batch: 500,
      })
    : undefined;
  const subscriptionReconciler = config.workerFamilies.includes('subscriptions')
    ? startSubscriptionReconciler(
        {
          pool,
          client,
          taskQueue: queues.subscriptions,
          concurrency: bulkStarts(config.bulkStartConcurrency),
          priority: config.bulkPriority,
        },
        log,
        {
          intervalMs: config.subscriptionReconcileIntervalMs,
          olderThanMs: config.subscriptionReconcileIntervalMs,
          batch: 1000,
        },
      )
    : undefined;
  log.info({ address: settings.address, namespace: settings.namespace, queues }, 'workers running');

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      clearTimeout(settleTimer);
      await reconciler?.stop();
      await subscriptionReconciler?.stop();
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await done.catch((err: unknown) => log.error({ err }, 'worker failed while stopping'));
      await connection.close();
      await client.connection.close();
      mailer.close();
      await pool.end();
    })());
  return { workers, done, shutdown, connection };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const config = loadConfigOrExit();
  const log = createLogger(config.logLevel, { process: 'worker' }, { format: config.logFormat });
  const running = await runWorkers({ config, log }).catch((err: unknown) => {
    log.fatal({ err }, 'worker failed to start');
    process.exit(1);
  });
  onShutdownSignal(log, 'draining workers', () => running.shutdown());
  running.done.catch((err: unknown) => {
    log.fatal({ err }, 'worker stopped with an error');
    process.exit(1);
  });
}
