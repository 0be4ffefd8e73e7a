import type { Logger } from './logger.js';

/**
 * Runs `stop` once on the first SIGINT/SIGTERM, then exits with its code. npm and tsx relay a terminal's
 * Ctrl-C, so a signal may arrive twice; only a third one forces an immediate exit.
 */
export function onShutdownSignal(log: Logger, what: string, stop: () => Promise<unknown>): void {
  let count = 0;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      count += 1;
      if (count === 1) {
        log.info({ signal: sig }, `shutting down: ${what}`);
        stop().then(
          () => process.exit(0),
          (err: unknown) => {
            log.error({ err }, 'error while shutting down');
            process.exit(1);
          },
        );
      } else if (count > 2) {
        process.exit(130);
      }
    });
  }
}
