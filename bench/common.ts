/** What the benchmarks share: free ports, a process's memory, and writing one section of bench/RESULTS.md. */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { quoteIdent } from '../lib/db.js';
import { startTemporalCluster } from '../scripts/cluster.js';
import { startDevServer } from '../scripts/dev-server.js';
import { provisionTemporalCli } from '../scripts/provision-temporal.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The p-th percentile of ascending figures (NaN when there are none). */
export const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
export const ms = (n: number) => `${n.toFixed(0)} ms`;
export const secs = (n: number) => `${(n / 1000).toFixed(1)} s`;

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resident set size of a process in MB (NaN once it is gone). */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
  return kb ? Number(kb) / 1024 : NaN;
}

/** Samples a process's RSS every 250 ms; `stop()` returns the highest value seen. */
export function sampleRss(pid: number): { stop(): number } {
  let max = 0;
  const timer = setInterval(() => {
    void rssMb(pid).then((mb) => (max = Math.max(max, mb || 0)));
  }, 250);
  return {
    stop: () => {
      clearInterval(timer);
      return max;
    },
  };
}

/** Replaces the section that starts with `heading` in bench/RESULTS.md (or appends it). */
export async function writeResultsSection(heading: string, lines: string[]): Promise<void> {
  const resultsFile = path.join(root, 'bench', 'RESULTS.md');
  const previous = await readFile(resultsFile, 'utf8').catch(() => '# Benchmark results\n\n');
  const escaped = heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const section = new RegExp(`${escaped}[\\s\\S]*?(?=\\n## |$)`);
  const body = lines.join('\n');
  const next = section.test(previous) ? previous.replace(section, body) : `${previous.trimEnd()}\n\n${body}`;
  await writeFile(resultsFile, `${next.trimEnd()}\n`);
}

/** CPU seconds (user + system) a process has used so far, from /proc (0 once it is gone). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th of them.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

/** The pids of every process whose command name is `name` (e.g. every PostgreSQL backend). */
export async function pidsNamed(name: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === name) pids.push(Number(entry));
  }
  return pids;
}

/**
 * CPU seconds PostgreSQL has used so far: every live postgres process, plus what its postmaster has collected
 * from backends that exited (cutime + cstime) — a pool closing mid-measurement would otherwise take its
 * backends' CPU out of the sum.
 */
export async function postgresCpuSeconds(): Promise<number> {
  let total = 0;
  for (const pid of await pidsNamed('postgres')) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const parent = Number(fields[1]);
    const parentComm = await readFile(`/proc/${parent}/comm`, 'utf8').catch(() => '');
    total += (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
    // The postmaster (its parent is not postgres): add its reaped children.
    if (parentComm.trim() !== 'postgres') total += (Number(fields[13] ?? 0) + Number(fields[14] ?? 0)) / 100;
  }
  return total;
}

/** Drops a benchmark's own database (and any session still on it). */
export async function dropBenchDatabase(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/**
 * The Temporal server a benchmark runs against: the dev server; with BENCH_TEMPORAL=cluster the production
 * topology's server on PostgreSQL (fresh databases, CLUSTER_PORT_BASE default 27233); with
 * BENCH_TEMPORAL=compose the server of a running compose stack (`COMPOSE_KEEP=1 npm run test:compose`): its
 * frontend on 127.0.0.1:7233 and its process, seen from this host, for the CPU figures; it is left running.
 */
export async function startBenchTemporal(onCluster: boolean): Promise<{
  address: string;
  process: Pick<ChildProcess, 'pid'>;
  stop(): Promise<void>;
  /** The dev server's Prometheus endpoint (undefined on the cluster and on compose). */
  metricsUrl?: string;
}> {
  if (process.env.BENCH_TEMPORAL === 'compose') {
    const container = process.env.BENCH_COMPOSE_TEMPORAL ?? 'opsflow-temporal-1';
    const { stdout } = await promisify(execFile)('docker', ['inspect', '--format', '{{.State.Pid}}', container]);
    const pid = Number(stdout.trim());
    if (!pid) throw new Error(`BENCH_TEMPORAL=compose: container ${container} is not running`);
    return { address: process.env.BENCH_TEMPORAL_ADDRESS ?? '127.0.0.1:7233', process: { pid }, stop: async () => {} };
  }
  if (onCluster) {
    return startTemporalCluster({
      portBase: Number(process.env.CLUSTER_PORT_BASE ?? 27233),
      dbPrefix: 'opsflow_temporal_bench',
      fresh: true,
    });
  }
  const metricsPort = await freePort();
  const server = await startDevServer({
    bin: await provisionTemporalCli(),
    port: await freePort(),
    namespace: 'default',
    metricsPort,
  });
  return Object.assign(server, { metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` });
}

/** The server's answered RPCs so far, by operation (its `service_requests` counter), from its /metrics. */
export async function serverRequests(metricsUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('service_requests{')) continue;
    const operation = /operation="([^"]+)"/.exec(line)?.[1];
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (operation && Number.isFinite(value)) counts.set(operation, (counts.get(operation) ?? 0) + value);
  }
  return counts;
}

/**
 * A load's own HTTP client: POSTs JSON with a bearer key over node:http on kept-alive sockets, the cheapest in
 * Node (fetch costs the calling process about twice the CPU per request). Non-2xx answers reject.
 */
export function jsonPoster(apiKey: string, maxSockets: number) {
  const agent = new Agent({ keepAlive: true, maxSockets });
  return (base: string, p: string, body: unknown) =>
    new Promise<{ eventId: string; deliveries: { id: string }[] }>((resolve, reject) => {
      const payload = JSON.stringify(body);
      const req = httpRequest(
        `${base}${p}`,
        {
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${apiKey}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) reject(new Error(`${p}: HTTP ${status} ${text}`));
            else resolve(JSON.parse(text) as { eventId: string; deliveries: { id: string }[] });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
}

/**
 * The environment a benchmark's worker and API run with: its database and Temporal, one bootstrap key, a fresh
 * encryption key, loopback receivers allowed, and no API rate limit (one key offers far more than the default
 * per-key 600 a minute, which would measure the limiter instead of the work).
 */
export function benchEnv(opts: {
  name: string;
  temporalAddress: string;
  databaseUrl: string;
  apiKey: string;
}): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: opts.temporalAddress,
    DATABASE_URL: opts.databaseUrl,
    OPSFLOW_API_KEYS: opts.apiKey,
    OPSFLOW_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    OPSFLOW_TASK_QUEUE_PREFIX: 'bench',
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
    API_RATE_LIMIT_PER_MINUTE: '1000000',
    LOG_LEVEL: 'warn',
    OPSFLOW_DATA_DIR: path.join(os.tmpdir(), `opsflow-bench-${opts.name}-${process.pid}`),
  };
}
