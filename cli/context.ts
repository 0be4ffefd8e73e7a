/**
 * What every command shares: where the API is and which key to use (OPSFLOW_URL, OPSFLOW_API_KEY or
 * OPSFLOW_API_KEY_FILE), the typed client, how to print for a person or a machine, and the exit codes.
 */
import { readFileSync } from 'node:fs';
import ora, { type Ora } from 'ora';
import pc from 'picocolors';
import { createOpsflowClient, type OpsflowClient, type OpsflowError } from '../api/client/index.js';

/** Exit codes: the table `opsflow --help` prints. */
export const EXIT = {
  ok: 0,
  /** The work finished but not well (failed, rolled back, aborted, rejected, canceled), or status found problems. */
  outcome: 1,
  /** Bad arguments, a missing setting, or a confirmation not given: nothing was sent. */
  usage: 2,
  /** The API refused the request or could not be reached. */
  api: 3,
  /** --timeout passed while following; the work goes on. */
  timeout: 4,
  /** Ctrl-C while following; the work goes on. */
  detached: 130,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0    success (deploy succeeded, backup verified, restore restored, status without problems)
  1    the work finished unsuccessfully (failed, rolled_back, aborted, rejected, canceled),
       or \`status\` found a problem
  2    usage: bad arguments, a missing setting (OPSFLOW_URL, OPSFLOW_API_KEY), confirmation not given
  3    the API refused the request (its message and request id are printed) or could not be reached
  4    --timeout passed while following (the work goes on: \`opsflow watch <id>\`)
  130  Ctrl-C while following (the work goes on: \`opsflow watch <id>\`)

Environment:
  OPSFLOW_URL            the API (default http://127.0.0.1:3000); plain http only to this machine unless --insecure
  OPSFLOW_INSECURE=1     as --insecure: send the key over plain http to another host (a compose network)
  OPSFLOW_API_KEY        an API key (or OPSFLOW_API_KEY_FILE: a file holding one)
  NO_COLOR               no colours; progress is only drawn on a terminal`;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly apiError?: OpsflowError['error'],
  ) {
    super(message);
  }
}

export const usage = (message: string) => new CliError(message, EXIT.usage);

export interface GlobalOptions {
  json?: boolean;
  url?: string;
  color?: boolean;
  insecure?: boolean;
}

/** This machine: the only host a key may be sent to over plain http without --insecure. */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** How to print: colours and spinners only on a terminal (and never with NO_COLOR or --json). */
export class Output {
  readonly json: boolean;
  readonly tty: boolean;
  readonly c: ReturnType<typeof pc.createColors>;
  private spinner: Ora | undefined;

  constructor(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env) {
    this.json = opts.json === true;
    // A terminal of no width (a pseudo-terminal nobody sized) would make the spinner redraw endlessly.
    this.tty = Boolean(process.stderr.isTTY) && (process.stderr.columns ?? 0) > 0 && !this.json;
    const colour = this.tty && opts.color !== false && !('NO_COLOR' in env && env.NO_COLOR !== '');
    this.c = pc.createColors(colour);
  }

  /** A line for people (nothing in --json mode). */
  line(text = ''): void {
    if (this.json) return;
    this.pause();
    process.stdout.write(`${text}\n`);
  }

  /** One JSON document (or one JSON line while following). */
  emit(value: unknown): void {
    if (this.json) process.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** The live step, redrawn in place on a terminal; elsewhere the caller prints lines instead. */
  progress(text: string): void {
    if (!this.tty) return;
    if (!this.spinner) this.spinner = ora({ text, stream: process.stderr, discardStdin: false }).start();
    else this.spinner.text = text;
  }

  pause(): void {
    this.spinner?.stop();
    this.spinner = undefined;
  }

  error(err: CliError): void {
    this.pause();
    if (this.json) {
      process.stdout.write(
        `${JSON.stringify({ error: err.apiError ?? { code: err.exitCode === EXIT.usage ? 'usage' : 'cli', message: err.message } })}\n`,
      );
      return;
    }
    process.stderr.write(`${this.c.red('error:')} ${err.message}\n`);
  }
}

function apiKey(env: NodeJS.ProcessEnv): string {
  if (env.OPSFLOW_API_KEY) return env.OPSFLOW_API_KEY.trim();
  if (env.OPSFLOW_API_KEY_FILE) {
    try {
      return readFileSync(env.OPSFLOW_API_KEY_FILE, 'utf8').trim();
    } catch (err) {
      throw usage(`OPSFLOW_API_KEY_FILE: cannot read ${env.OPSFLOW_API_KEY_FILE}: ${(err as Error).message}`);
    }
  }
  throw usage('no API key: set OPSFLOW_API_KEY (or OPSFLOW_API_KEY_FILE); `opsflow keys create` makes scoped ones');
}

export function apiUrl(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string {
  const url = opts.url ?? env.OPSFLOW_URL ?? 'http://127.0.0.1:3000';
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw usage(`OPSFLOW_URL is not an http(s) URL: ${url}`);
  }
  const u = new URL(url);
  // The key goes in every request's header: over plain http to another host, anyone on the way can read it.
  if (u.protocol === 'http:' && !LOOPBACK.test(u.hostname) && !opts.insecure && env.OPSFLOW_INSECURE !== '1') {
    throw usage(
      `refusing to send the API key to ${u.host} over plain http: use https, or --insecure (OPSFLOW_INSECURE=1) on a network you trust, such as a compose network`,
    );
  }
  return url;
}

export interface Ctx {
  out: Output;
  api: OpsflowClient;
  url: string;
}

export function context(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Ctx {
  const url = apiUrl(opts, env);
  return { out: new Output(opts, env), api: createOpsflowClient({ baseUrl: url, apiKey: apiKey(env) }), url };
}

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** The answer's data, or a CliError carrying the API's message and request id (exit 3). */
export async function call<T>(url: string, request: Promise<Answer<T>>): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await request;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new CliError(`cannot reach the opsflow API at ${url}: ${why}`, EXIT.api);
  }
  if (answer.error !== undefined || !answer.response.ok) {
    const envelope = (answer.error as OpsflowError | undefined)?.error;
    if (envelope?.message) {
      throw new CliError(
        `${envelope.message} (HTTP ${answer.response.status} ${envelope.code}, request ${envelope.requestId})`,
        EXIT.api,
        envelope,
      );
    }
    throw new CliError(`HTTP ${answer.response.status} from ${answer.response.url}`, EXIT.api);
  }
  return answer.data as T;
}

/** "3 s", "4 min", "2 h 5 min", "3 d". */
export function age(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) {
    const h = Math.floor(seconds / 3600);
    const m = Math.round((seconds % 3600) / 60);
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  return `${Math.round(seconds / 86400)} d`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Columns padded to their widest cell; the header dimmed. */
export function table(out: Output, header: string[], rows: (string | number | null | undefined)[][]): void {
  const cells = rows.map((r) => r.map((v) => (v === null || v === undefined ? '—' : String(v))));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    r
      .map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  out.line(out.c.dim(fmt(header)));
  for (const r of cells) out.line(fmt(r));
  if (rows.length === 0) out.line(out.c.dim('(none)'));
}
