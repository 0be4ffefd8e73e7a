/** Turning a command's async body into a commander action with opsflow's context, errors and exit codes. */
import type { Command } from 'commander';
import ms from 'ms';
import { CliError, Output, context, usage, type Ctx, type GlobalOptions } from './context.js';
import type { FollowOptions } from './follow.js';

export interface FollowFlags {
  wait?: boolean;
  timeout?: string;
}

/** --no-wait and --timeout, on every command that starts work (only --timeout on `watch`). */
export function withFollow(cmd: Command, opts: { noWait?: boolean } = {}): Command {
  if (opts.noWait !== false) cmd.option('--no-wait', 'return once the work has started (print its id)');
  return cmd.option(
    '--timeout <duration>',
    'stop following after this long, e.g. 90s, 30m, 2h (exit 4; the work goes on)',
  );
}

export function followOptions(flags: FollowFlags): FollowOptions {
  if (flags.timeout === undefined) return {};
  const t = ms(flags.timeout as ms.StringValue) as number | undefined;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) {
    throw usage(`--timeout must be a duration such as 90s, 30m or 2h (got ${flags.timeout})`);
  }
  return { timeoutMs: t };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = (ctx: Ctx, ...args: any[]) => Promise<number | void>;

/**
 * The action commander calls: builds the context from the global options, runs the body and sets the exit
 * code; a CliError prints its message (or, with --json, the API's error envelope) and exits with its code.
 */
export function run(body: Body) {
  return async (...args: unknown[]) => {
    const cmd = args.at(-1) as Command;
    const opts = cmd.optsWithGlobals<GlobalOptions>();
    try {
      const ctx = context(opts);
      process.exitCode = (await body(ctx, ...args.slice(0, -1))) ?? 0;
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      new Output(opts).error(err);
      process.exitCode = err.exitCode;
    }
  };
}
