/**
 * `npm run bench:webhooks`: webhook deliveries through the whole stack on this machine — the API (HTTP),
 * a Temporal dev server, a worker process, PostgreSQL, and a local receiver answering 200.
 *
 * 1. Throughput: events offered at a fixed rate (BENCH_RATE, default 100/s) for BENCH_SECONDS (20);
 *    reports sustained deliveries/s (delivered ÷ time from first accepted to last received) and loss.
 * 2. Latency: 50 events/s for 15 s; p50/p99 from `POST /v1/events` accepted to the receiver having it;
 *    then the same at BENCH_LOW_RATE (20/s), below what this machine sustains, to show latency without a backlog.
 * The worker's RSS is sampled throughout. Figures are printed and written to bench/RESULTS.md.
 *
 * BENCH_TEMPORAL=cluster runs the same against the production topology's Temporal server on PostgreSQL
 * (scripts/cluster.ts, fresh databases, CLUSTER_PORT_BASE default 27233) instead of the dev server, with
 * BENCH_WORKERS worker processes (default 1; 2 is the cluster's topology).
 */
import { createOpsflowClient } from '../api/client/index.js';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { createApp } from '../api/app.js';
import { loadConfig } from '../lib/config.js';
import { createPool, ensureDatabase, migrate } from '../lib/db.js';
import { createLogger } from '../lib/logger.js';
import { taskQueues } from '../lib/task-queues.js';
import { connectClient, temporalSettings } from '../lib/temporal.js';
import { TEMPORAL_SERVER_VERSION } from '../scripts/cluster.js';
import {
  benchEnv,
  cpuSeconds,
  dropBenchDatabase,
  freePort,
  pct,
  postgresCpuSeconds,
  root,
  rssMb,
  sleep,
  startBenchTemporal,
  writeResultsSection,
} from './common.js';

const RATE = Number(process.env.BENCH_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const LATENCY_RATE = 50;
const LATENCY_SECONDS = 15;
const LOW_RATE = Number(process.env.BENCH_LOW_RATE ?? 20);
const API_KEY = 'bench-key-0123456789abcdef-0123456789';
const ON_CLUSTER = process.env.BENCH_TEMPORAL === 'cluster';
const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);

/** "0", or "3 (HTTP 503 ×2, fetch failed ×1)": what went wrong, not only how often. */
const errorsText = (errors: string[]) => {
  if (errors.length === 0) return '0';
  const counts = new Map<string, number>();
  for (const e of errors) counts.set(e, (counts.get(e) ?? 0) + 1);
  return `${errors.length} (${[...counts].map(([e, n]) => `${e} ×${n}`).join(', ')})`;
};

async function main() {
  const dbName = `opsflow_bench_${process.pid}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, 10);
  await migrate(pool);

  const server = await startBenchTemporal(ON_CLUSTER);
  const env = benchEnv({ name: 'webhooks', temporalAddress: server.address, databaseUrl, apiKey: API_KEY });
  const config = loadConfig(env);
  const log = createLogger('warn');

  // Receiver: records when each webhook-id arrived.
  const arrivals = new Map<string, number>();
  const receiver = createServer((req, res) => {
    const id = String(req.headers['webhook-id']);
    req.resume();
    req.on('end', () => {
      if (!arrivals.has(id)) arrivals.set(id, performance.now());
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const workers = Array.from({ length: WORKERS }, () =>
    spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/main.ts')], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
  const client = await connectClient(temporalSettings(config));
  const app = createApp({ config, apiKeys: [API_KEY], pool, temporal: client, queues: taskQueues('bench'), log });
  const apiPort = await freePort();
  const api = serve({ fetch: app.fetch, port: apiPort, hostname: '127.0.0.1' });
  // The typed client, as an application publishing events would use it.
  const opsflow = createOpsflowClient({ baseUrl: `http://127.0.0.1:${apiPort}`, apiKey: API_KEY });

  let maxRss = 0;
  const rssTimer = setInterval(() => {
    for (const worker of workers) void rssMb(worker.pid!).then((mb) => (maxRss = Math.max(maxRss, mb || 0)));
  }, 500);

  await opsflow.POST('/v1/endpoints', {
    body: { url: receiverUrl, eventTypes: ['bench.event'], retrySchedule: ['0s', '1s', '5s'] },
  });
  // Warm up: the worker bundles workflows at start; wait until one delivery goes through.
  const warm = await opsflow.POST('/v1/events', { body: { type: 'bench.event', payload: {} } });
  if (!warm.data) throw new Error(`warm-up event refused: ${JSON.stringify(warm.error)}`);
  while (!arrivals.has(warm.data.eventId)) await sleep(100);

  /** Offers `rate` events/s for `seconds`; returns per-event accepted times. */
  async function offer(rate: number, seconds: number) {
    const accepted = new Map<string, number>();
    const errors: string[] = [];
    const total = rate * seconds;
    const start = performance.now();
    const inflight: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      inflight.push(
        opsflow
          .POST('/v1/events', { body: { type: 'bench.event', payload: { i } } })
          .then(({ data, response }) => {
            if (!data) errors.push(`HTTP ${response.status}`);
            else accepted.set(data.eventId, performance.now());
          })
          .catch((err: Error) => void errors.push(err.message)),
      );
    }
    await Promise.all(inflight);
    const offeredFor = (performance.now() - start) / 1000;
    // Wait (bounded) for every accepted event to arrive.
    const deadline = performance.now() + 120_000;
    while ([...accepted.keys()].some((id) => !arrivals.has(id)) && performance.now() < deadline) await sleep(200);
    return { accepted, errors, start, offeredFor, total };
  }

  // Where the CPU goes during the throughput run: Temporal, the workers, PostgreSQL, this process (API,
  // load generator and receiver). PostgreSQL backends come and go; those alive at the end are counted.
  const cpuNow = async () => ({
    temporal: await cpuSeconds(server.process.pid!),
    workers: (await Promise.all(workers.map((w) => cpuSeconds(w.pid!)))).reduce((a, b) => a + b, 0),
    postgres: await postgresCpuSeconds(),
    bench: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
  });
  const cpu0 = await cpuNow();
  const wall0 = performance.now();
  const t = await offer(RATE, SECONDS);
  const cpu1 = await cpuNow();
  const wallS = (performance.now() - wall0) / 1000;
  const share = (k: keyof typeof cpu0) => `${(((cpu1[k] - cpu0[k]) / wallS) * 100).toFixed(0)} %`;
  const cpuLine = `temporal ${share('temporal')}, workers ${share('workers')}, PostgreSQL ${share('postgres')}, API + load + receiver ${share('bench')} (of one core; ${os.cpus().length} cores = ${os.cpus().length * 100} %)`;
  const tArrivals = [...t.accepted.keys()].map((id) => arrivals.get(id)).filter((x): x is number => x !== undefined);
  // Lost = accepted (202) but never received; refused requests are counted apart, as API errors.
  const lost = t.accepted.size - tArrivals.length;
  const sustained = tArrivals.length / ((Math.max(...tArrivals) - t.start) / 1000);

  const l = await offer(LATENCY_RATE, LATENCY_SECONDS);
  const latencies = [...l.accepted.entries()]
    .map(([id, at]) => (arrivals.get(id) ?? NaN) - at)
    .filter((x) => !Number.isNaN(x))
    .sort((a, b) => a - b);
  const latencyLost = l.accepted.size - latencies.length;
  // The same below capacity, to separate the pipeline's own latency from queueing behind a backlog.
  const low = await offer(LOW_RATE, LATENCY_SECONDS);
  const lowLatencies = [...low.accepted.entries()]
    .map(([id, at]) => (arrivals.get(id) ?? NaN) - at)
    .filter((x) => !Number.isNaN(x))
    .sort((a, b) => a - b);

  clearInterval(rssTimer);
  const workersText = WORKERS === 1 ? 'one worker process' : `${WORKERS} worker processes`;
  const lines = [
    ON_CLUSTER
      ? `## Webhooks on Temporal-on-PostgreSQL (\`BENCH_TEMPORAL=cluster BENCH_WORKERS=${WORKERS} npm run bench:webhooks\`)`
      : `## Webhook delivery (\`npm run bench:webhooks\`)`,
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version},`,
    ON_CLUSTER
      ? `Temporal server ${TEMPORAL_SERVER_VERSION} on the same PostgreSQL (4 history shards), ${workersText}, API and receiver on loopback, all on this machine.`
      : `Temporal dev server (SQLite, in memory), ${workersText}, API and receiver on loopback.`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| offered | ${RATE}/s for ${SECONDS} s (${t.total} events, 1 endpoint each) |`,
    `| sustained deliveries/s | ${sustained.toFixed(1)} |`,
    `| lost (accepted, never received) | ${lost} (API errors: ${errorsText(t.errors)}) |`,
    `| latency at ${LATENCY_RATE}/s, p50 | ${pct(latencies, 50).toFixed(0)} ms |`,
    `| latency at ${LATENCY_RATE}/s, p99 | ${pct(latencies, 99).toFixed(0)} ms |`,
    `| latency run lost | ${latencyLost} (API errors: ${errorsText(l.errors)}) |`,
    `| latency at ${LOW_RATE}/s, p50 / p99 | ${pct(lowLatencies, 50).toFixed(0)} / ${pct(lowLatencies, 99).toFixed(0)} ms (lost ${low.accepted.size - lowLatencies.length}, API errors: ${errorsText(low.errors)}) |`,
    `| worker RSS, max (per process) | ${maxRss.toFixed(0)} MB |`,
    `| CPU during the throughput run | ${cpuLine} |`,
    '',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);

  await writeResultsSection(ON_CLUSTER ? '## Webhooks on Temporal-on-PostgreSQL' : '## Webhook delivery', lines);

  for (const worker of workers) {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
  }
  api.close();
  receiver.close();
  await client.connection.close();
  await pool.end();
  await server.stop();
  await dropBenchDatabase(dbName);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
