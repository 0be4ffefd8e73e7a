/**
 * `npm run bench:webhooks`: webhook deliveries through the whole stack on this machine — the API (HTTP),
 * a Temporal dev server, a worker process, PostgreSQL, and a local receiver answering 200.
 *
 * 1. Throughput: events offered at a fixed rate (BENCH_RATE, default 100/s) for BENCH_SECONDS (20);
 *    reports sustained deliveries/s (delivered ÷ time from first accepted to last received) and loss.
 * 2. Latency: 50 events/s for 15 s; p50/p99 from `POST /v1/events` accepted to the receiver having it;
 *    then the same at BENCH_LOW_RATE (20/s), below what this machine sustains, to show latency without a backlog.
 * The worker's RSS is sampled throughout. Figures are printed and written to bench/RESULTS.md.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import pg from 'pg';
import { createApp } from '../api/app.js';
import { loadConfig } from '../lib/config.js';
import { createPool, ensureDatabase, migrate, quoteIdent } from '../lib/db.js';
import { createLogger } from '../lib/logger.js';
import { taskQueues } from '../lib/task-queues.js';
import { connectClient, temporalSettings } from '../lib/temporal.js';
import { startDevServer } from '../scripts/dev-server.js';
import { freePort, root, rssMb, sleep, writeResultsSection } from './common.js';
import { provisionTemporalCli } from '../scripts/provision-temporal.js';

const RATE = Number(process.env.BENCH_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const LATENCY_RATE = 50;
const LATENCY_SECONDS = 15;
const LOW_RATE = Number(process.env.BENCH_LOW_RATE ?? 20);
const API_KEY = 'bench-key-0123456789abcdef';

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function main() {
  const dbName = `opsflow_bench_${process.pid}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, 10);
  await migrate(pool);

  const bin = await provisionTemporalCli();
  const temporalPort = await freePort();
  const server = await startDevServer({ bin, port: temporalPort, namespace: 'default' });
  const env = {
    TEMPORAL_ADDRESS: server.address,
    DATABASE_URL: databaseUrl,
    OPSFLOW_API_KEYS: API_KEY,
    OPSFLOW_TASK_QUEUE_PREFIX: 'bench',
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
    LOG_LEVEL: 'warn',
    OPSFLOW_DATA_DIR: path.join(os.tmpdir(), `opsflow-bench-${process.pid}`),
  };
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

  const worker = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/main.ts')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const client = await connectClient(temporalSettings(config));
  const app = createApp({ config, apiKeys: [API_KEY], pool, temporal: client, queues: taskQueues('bench'), log });
  const apiPort = await freePort();
  const api = serve({ fetch: app.fetch, port: apiPort, hostname: '127.0.0.1' });
  const base = `http://127.0.0.1:${apiPort}`;
  const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };

  let maxRss = 0;
  const rssTimer = setInterval(() => {
    void rssMb(worker.pid!).then((mb) => (maxRss = Math.max(maxRss, mb || 0)));
  }, 500);

  await fetch(`${base}/v1/endpoints`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ url: receiverUrl, eventTypes: ['bench.event'], retrySchedule: ['0s', '1s', '5s'] }),
  });
  // Warm up: the worker bundles workflows at start; wait until one delivery goes through.
  const warm = (await (
    await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ type: 'bench.event', payload: {} }),
    })
  ).json()) as { eventId: string };
  while (!arrivals.has(warm.eventId)) await sleep(100);

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
        fetch(`${base}/v1/events`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ type: 'bench.event', payload: { i } }),
        })
          .then(async (res) => {
            if (res.status !== 202) errors.push(`HTTP ${res.status}`);
            const body = (await res.json()) as { eventId: string };
            accepted.set(body.eventId, performance.now());
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

  const t = await offer(RATE, SECONDS);
  const tArrivals = [...t.accepted.keys()].map((id) => arrivals.get(id)).filter((x): x is number => x !== undefined);
  const lost = t.total - tArrivals.length;
  const sustained = tArrivals.length / ((Math.max(...tArrivals) - t.start) / 1000);

  const l = await offer(LATENCY_RATE, LATENCY_SECONDS);
  const latencies = [...l.accepted.entries()]
    .map(([id, at]) => (arrivals.get(id) ?? NaN) - at)
    .filter((x) => !Number.isNaN(x))
    .sort((a, b) => a - b);
  const latencyLost = l.total - latencies.length;
  // The same below capacity, to separate the pipeline's own latency from queueing behind a backlog.
  const low = await offer(LOW_RATE, LATENCY_SECONDS);
  const lowLatencies = [...low.accepted.entries()]
    .map(([id, at]) => (arrivals.get(id) ?? NaN) - at)
    .filter((x) => !Number.isNaN(x))
    .sort((a, b) => a - b);

  clearInterval(rssTimer);
  const lines = [
    `## Webhook delivery (\`npm run bench:webhooks\`)`,
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version},`,
    `Temporal dev server (SQLite, in memory), one worker process, API and receiver on loopback.`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| offered | ${RATE}/s for ${SECONDS} s (${t.total} events, 1 endpoint each) |`,
    `| sustained deliveries/s | ${sustained.toFixed(1)} |`,
    `| lost (accepted, never received) | ${lost} (API errors: ${t.errors.length}) |`,
    `| latency at ${LATENCY_RATE}/s, p50 | ${pct(latencies, 50).toFixed(0)} ms |`,
    `| latency at ${LATENCY_RATE}/s, p99 | ${pct(latencies, 99).toFixed(0)} ms |`,
    `| latency run lost | ${latencyLost} (API errors: ${l.errors.length}) |`,
    `| latency at ${LOW_RATE}/s, p50 / p99 | ${pct(lowLatencies, 50).toFixed(0)} / ${pct(lowLatencies, 99).toFixed(0)} ms (lost ${low.total - lowLatencies.length}) |`,
    `| worker RSS, max | ${maxRss.toFixed(0)} MB |`,
    '',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);

  await writeResultsSection('## Webhook delivery', lines);

  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  api.close();
  receiver.close();
  await client.connection.close();
  await pool.end();
  await server.stop();
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`);
  await admin.end();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
