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

const DEFAULTS: ReconcilerOptions = { intervalMs: 30_000, olderThanMs: 30_000, batch: 500 };

function startReconciler(
  what: string,
  round: (opts: ReconcilerOptions) => Promise<StartOutcome>,
  log: Logger,
  opts: ReconcilerOptions,
): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const once = async () => {
    try {
      const r = await round(opts);
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
