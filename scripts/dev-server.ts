/**
 * Starts `temporal server start-dev` as a child process with every opsflow search attribute registered,
 * and waits until its frontend answers. Used by `npm start` and by the test harness.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { searchAttributeCliArgs } from '../lib/search-attributes.js';

export interface DevServer {
  address: string;
  uiUrl: string | undefined;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  bin: string;
  port: number;
  /** Web UI port; omit to run headless. */
  uiPort?: number;
  /** SQLite file for state that survives restarts; omit for in-memory. */
  dbFile?: string;
  namespace: string;
  ip?: string;
  /** Where the server's own log goes (it is noisy): a writable stream, or ignored. */
  logTo?: NodeJS.WritableStream;
  readyTimeoutMs?: number;
  /** Port of the server's Prometheus `/metrics` (the bench counts RPCs there); omit to let it pick one. */
  metricsPort?: number;
  /** Dynamic config values (`--dynamic-config-value key=JSON`), e.g. a lower history limit in a test. */
  dynamicConfig?: Record<string, string | number | boolean>;
}

/**
 * The dev server picks its HTTP, metrics and internal service ports itself (bind to :0, close, bind again
 * later), so another process can take one of them in between: it then exits at start with "address already
 * in use" (seen once in CI). Such a start is tried again — each try picks new ports — unless the clash is on
 * the frontend port the caller chose.
 */
const START_TRIES = 3;

/** The dynamic config key that turns on Temporal's priority-aware task matching (server 1.28–1.29: off by default). */
export const PRIORITY_MATCHER = 'matching.useNewMatcher';

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (!(err instanceof PortClash) || attempt >= START_TRIES || err.onFrontendPort) throw err;
      opts.logTo?.write(`temporal dev server: a port was taken during start (try ${attempt}); starting again\n`);
    }
  }
}

class PortClash extends Error {
  constructor(
    message: string,
    readonly onFrontendPort: boolean,
  ) {
    super(message);
  }
}

/** Keeps the start of a stream (where a panic's message is) and its end. */
function headAndTail(limit: number) {
  let head = '';
  let tail = '';
  let dropped = false;
  return {
    add(text: string) {
      if (head.length < limit) {
        const room = limit - head.length;
        head += text.slice(0, room);
        text = text.slice(room);
      }
      if (text === '') return;
      tail += text;
      if (tail.length > limit) {
        dropped = true;
        tail = tail.slice(-limit);
      }
    },
    text: () => (dropped ? `${head}\n[…]\n${tail}` : head + tail),
  };
}

async function startOnce(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(opts.port), '--log-level', 'warn'];
  args.push('--namespace', opts.namespace, ...searchAttributeCliArgs());
  if (opts.uiPort !== undefined) args.push('--ui-port', String(opts.uiPort), '--ui-ip', ip);
  else args.push('--headless');
  if (opts.metricsPort !== undefined) args.push('--metrics-port', String(opts.metricsPort));
  // Task priorities are honoured only by the priority-enabled matcher, off by default in server 1.29: opsflow's
  // bulk work (BULK_TASK_PRIORITY) counts on it to stay behind interactive work.
  const dynamicConfig = { [PRIORITY_MATCHER]: true, ...opts.dynamicConfig };
  for (const [key, value] of Object.entries(dynamicConfig)) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  if (opts.dbFile) {
    await mkdir(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  // Own process group: a Ctrl-C in the terminal reaches opsflow, which stops the server last, after the
  // workers have drained (they need the server to report what they finish).
  const child = spawn(opts.bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const output = headAndTail(4000);
  const collect = (chunk: Buffer) => {
    output.add(chunk.toString());
    opts.logTo?.write(chunk);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // 'close' comes after the last output: what a dying server printed is all read by then.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));

  const address = `${ip}:${opts.port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    process.off('exit', killOnExit);
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) {
      process.off('exit', killOnExit);
      await closed;
      const message = `temporal server start-dev exited with code ${child.exitCode}:\n${output.text()}`;
      if (/address already in use/i.test(output.text())) {
        const onFrontendPort = output.text().includes(`:${opts.port}: bind`);
        throw new PortClash(message, onFrontendPort);
      }
      throw new Error(message);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: opts.namespace });
        break;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`Temporal dev server at ${address} not ready: ${(err as Error).message}\n${output.text()}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const uiUrl = opts.uiPort === undefined ? undefined : `http://${ip === '0.0.0.0' ? 'localhost' : ip}:${opts.uiPort}`;
  return { address, uiUrl, process: child, stop };
}
