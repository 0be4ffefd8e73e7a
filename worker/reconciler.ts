/**
 * The delivery reconciler, run by every worker that serves the webhooks family: every `intervalMs` it starts
 * the workflows of deliveries whose rows were committed but whose start never went through (Temporal was
 * unreachable, or the publishing process died between the commit and the start). Running it from several
 * workers at once is safe: a start of a workflow that exists is a no-op.
 */
import type { Logger } from '../lib/logger.js';
import { startStrandedDeliveries, type WebhookServiceDeps } from '../lib/webhooks/service.js';

export function startDeliveryReconciler(
  deps: WebhookServiceDeps,
  log: Logger,
  opts: { intervalMs: number; olderThanMs: number; batch: number } = {
    intervalMs: 30_000,
    olderThanMs: 30_000,
    batch: 500,
  },
): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const once = async () => {
    try {
      const r = await startStrandedDeliveries(deps, { olderThanMs: opts.olderThanMs, limit: opts.batch });
      if (r.started > 0) log.warn({ started: r.started }, 'started delivery workflows whose start had failed');
      if (r.failed > 0) log.error({ failed: r.failed, err: r.error }, 'delivery workflows still cannot be started');
    } catch (err) {
      log.error({ err }, 'delivery reconciler failed; next try in one interval');
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
