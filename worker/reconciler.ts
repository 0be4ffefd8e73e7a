/**
 * Reconcilers, run by every worker that serves the family: every `intervalMs` they start the workflows of rows
 * that were committed but whose start never went through (Temporal was unreachable, or the process that wrote
 * them died between the commit and the start) — webhook deliveries, and subscriptions (a PUT's or a batch
 * import's). Running them from several workers at once is safe: a start of a workflow that exists is a no-op.
 */
import type { Logger } from '../lib/logger.js';
import { startUnstartedSubscriptions, type SubscriptionStarterDeps } from '../lib/subscriptions/start.js';
import { startStrandedDeliveries, type WebhookServiceDeps } from '../lib/webhooks/service.js';
import type { StartOutcome } from '../lib/workflow-starts.js';

export interface ReconcilerOptions {
  intervalMs: number;
  olderThanMs: number;
  batch: number;
}

const MAX_PAGES_PER_ROUND = 1000;

const DEFAULTS: ReconcilerOptions = { intervalMs: 30_000, olderThanMs: 30_000, batch: 500 };

function startReconciler(
  what: string,
  round: (opts: ReconcilerOptions) => Promise<StartOutcome>,
  log: Logger,
  opts: ReconcilerOptions,
): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  // A round goes on while pages come back full and every start went through: a backlog of 100,000 imported
  // rows is worked off in one round, not 1,000 per interval.
  const drain = async (): Promise<StartOutcome> => {
    const total: StartOutcome = { started: 0, failed: 0 };
    for (let page = 0; page < MAX_PAGES_PER_ROUND; page++) {
      const r = await round(opts);
      total.started += r.started;
      total.failed += r.failed;
      total.error ??= r.error;
      if (r.error || r.started < opts.batch) break;
    }
    return total;
  };
  const once = async () => {
    try {
      const r = await drain();
      if (r.started > 0) log.warn({ started: r.started }, `started ${what} workflows whose start had failed`);
      if (r.failed > 0) log.error({ failed: r.failed, err: r.error }, `${what} workflows still cannot be started`);
    } catch (err) {
      log.error({ err }, `${what} reconciler failed; next try in one interval`);
    }
  };
  // One round at a time: ticks that come while a round is still running are skipped.
  const timer = setInterval(() => {
    running ??= once().finally(() => (running = undefined));
  }, opts.intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

export function startDeliveryReconciler(deps: WebhookServiceDeps, log: Logger, opts: ReconcilerOptions = DEFAULTS) {
  return startReconciler(
    'delivery',
    (o) => startStrandedDeliveries(deps, { olderThanMs: o.olderThanMs, limit: o.batch }),
    log,
    opts,
  );
}

export function startSubscriptionReconciler(
  deps: SubscriptionStarterDeps,
  log: Logger,
  opts: ReconcilerOptions = DEFAULTS,
) {
  return startReconciler(
    'subscription',
    (o) => startUnstartedSubscriptions(deps, { olderThanMs: o.olderThanMs, limit: o.batch }),
    log,
    opts,
  );
}
