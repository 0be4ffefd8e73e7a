/**
 * One pino logger for the process; the Temporal Runtime's logger (SDK, workflow and activity context
 * loggers) is bridged into it so every line has the same shape. JSON lines by default (for log shippers);
 * `pretty` (LOG_FORMAT, and `npm start` on a terminal) prints lines people read, in the same process —
 * pino-pretty as a synchronous stream, not a transport thread.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import pretty from 'pino-pretty';
import type { Logger as TemporalLogger, LogLevel, LogMetadata } from '@temporalio/common';

export type Logger = PinoLogger;

export type LogFormat = 'json' | 'pretty';

export function createLogger(
  level: string,
  bindings: Record<string, unknown> = {},
  opts: { format?: LogFormat; destination?: DestinationStream } = {},
): Logger {
  const options = { level, base: { service: 'opsflow', ...bindings } };
  if (opts.format !== 'pretty') return opts.destination ? pino(options, opts.destination) : pino(options);
  return pino(
    options,
    pretty({
      sync: true,
      colorize: !opts.destination && process.stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,service',
      ...(opts.destination ? { destination: opts.destination } : {}),
    }),
  );
}

const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Adapts pino to the Temporal `Logger` interface for `Runtime.install({ logger })`. */
export function temporalLogger(log: Logger): TemporalLogger {
  const emit = (level: LogLevel, message: string, meta?: LogMetadata) => {
    const fields: Record<string, unknown> = {};
    if (meta) for (const [k, v] of Object.entries(meta)) fields[k] = v;
    log[levels[level]](fields, message);
  };
  return {
    log: emit,
    trace: (m, meta) => emit('TRACE', m, meta),
    debug: (m, meta) => emit('DEBUG', m, meta),
    info: (m, meta) => emit('INFO', m, meta),
    warn: (m, meta) => emit('WARN', m, meta),
    error: (m, meta) => emit('ERROR', m, meta),
  };
}
