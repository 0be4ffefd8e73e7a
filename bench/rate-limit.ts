/**
 * `npm run bench:rate-limit`: a per-endpoint rate limit under a large recover, on the whole stack of this machine
 * — the API (HTTP), a Temporal dev server, two worker processes (the limit is shared between them), PostgreSQL,
 * and two local receivers answering 200.
 *
 * An endpoint limited to BENCH_LIMIT/s (20) has BENCH_DELIVERIES (10,000) dead-lettered deliveries from the last
 * half hour (seeded in PostgreSQL: failing them for real would take as long as the recover itself); one `POST
 * /v1/endpoints/{id}/recover` sends them all again. Meanwhile an unlimited endpoint is published to at 10 events/s,
 * its latency (accepted → received) compared with the same load before the recover. Reports: the most requests
 * the limited receiver saw in any one second (sliding, by arrival), its sustained rate, how long the recover took,
 * deliveries received / duplicated / missing, and the unlimited endpoint's p50/p99 before and during. Printed and
 * written to bench/RESULTS.md.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { createApp } from '../api/app.js';
import { createOpsflowClient } from '../api/client/index.js';
import { loadConfig } from '../lib/config.js';
import { createPool, ensureDatabase, migrate } from '../lib/db.js';
import { createLogger } from '../lib/logger.js';
import { WINDOW_MS } from '../lib/webhooks/pacing.js';
import { taskQueues } from '../lib/task-queues.js';
import { connectClient, temporalSettings } from '../lib/temporal.js';
import {
  benchEnv,
  dropBenchDatabase,
  freePort,
  pct,
  root,
  sleep,
  startBenchTemporal,
  writeResultsSection,
} from './common.js';

const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 10_000);
const LIMIT = Number(process.env.BENCH_LIMIT ?? 20);
const OTHER_RATE = 10;
const BASELINE_SECONDS = 15;
const API_KEY = 'bench-key-0123456789abcdef-0123456789';

/** The most arrivals in any window of `ms` (half-open), by arrival time. */
function maxInWindow(sorted: number[], ms: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= ms) lo += 1;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** A receiver answering 200 that notes when each webhook-id first arrived, and every arrival. */
async function receiver(): Promise<{ url: string; first: Map<string, number>; all: number[]; server: Server }> {
  const first = new Map<string, number>();
  const all: number[] = [];
  const server = createServer((req, res) => {
    const id = String(req.headers['webhook-id']);
    req.resume();
    req.on('end', () => {
      const now = performance.now();
      all.push(now);
      if (!first.has(id)) first.set(id, now);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, first, all, server };
}

async function main() {
  const dbName = `opsflow_bench_rl_${process.pid}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, 10);
  await migrate(pool);
  const server = await startBenchTemporal(false);
  const env = benchEnv({ name: 'rl', temporalAddress: server.address, databaseUrl, apiKey: API_KEY });
  const config = loadConfig(env);
  const log = createLogger('warn');
  const limited = await receiver();
  const free = await receiver();
  const workers = [0, 1].map(() =>
    spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/main.ts')], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
  const client = await connectClient(temporalSettings(config));
  const app = createApp({ config, apiKeys: [API_KEY], pool, temporal: client, queues: taskQueues('bench'), log });
  const apiPort = await freePort();
  const api = serve({ fetch: app.fetch, port: apiPort, hostname: '127.0.0.1' });
  const opsflow = createOpsflowClient({ baseUrl: `http://127.0.0.1:${apiPort}`, apiKey: API_KEY });

  const made = await opsflow.POST('/v1/endpoints', {
    body: { url: limited.url, eventTypes: ['bench.limited'], rateLimitPerSecond: LIMIT },
  });
  const other = await opsflow.POST('/v1/endpoints', { body: { url: free.url, eventTypes: ['bench.free'] } });
  if (!made.data || !other.data) throw new Error(`endpoints refused: ${JSON.stringify(made.error ?? other.error)}`);
  const limitedId = made.data.id;

  // Warm up: the workers bundle workflows at start; wait until one delivery goes through.
  const warm = await opsflow.POST('/v1/events', { body: { type: 'bench.free', payload: {} } });
  while (!free.first.has(warm.data!.eventId)) await sleep(100);

  // The outage's leftovers: DELIVERIES dead-lettered deliveries of the last half hour (their workflows long done).
  const seeded = performance.now();
  await pool.query(
    `WITH ev AS (
       INSERT INTO opsflow.webhook_events (id, type, body, created_at)
       SELECT 'msg_rl_' || g, 'bench.limited',
              json_build_object('type', 'bench.limited', 'timestamp', now(), 'data', json_build_object('i', g))::text,
              now() - interval '30 minutes' + g * interval '1 millisecond'
       FROM generate_series(1, $1) g RETURNING id, created_at
     ), d AS (
       INSERT INTO opsflow.webhook_deliveries
         (id, event_id, endpoint_id, event_type, status, attempts, created_at, updated_at, workflow_started_at)
       SELECT 'dlv_rl_' || substr(ev.id, 8), ev.id, $2, 'bench.limited', 'dead_lettered', 5, ev.created_at, now(), now()
       FROM ev RETURNING id, created_at
     )
     INSERT INTO opsflow.dead_letters (id, delivery_id, endpoint_id, event_type, reason, created_at)
     SELECT 'dl_rl_' || substr(d.id, 8), d.id, $2, 'bench.limited', 'retry schedule exhausted (seeded)', d.created_at
     FROM d`,
    [DELIVERIES, limitedId],
  );
  console.log(`seeded ${DELIVERIES} dead letters in ${((performance.now() - seeded) / 1000).toFixed(1)} s`);

  /** Publishes to the unlimited endpoint at OTHER_RATE/s until `until()`; latency of each, accepted → received. */
  async function publishFree(until: () => boolean) {
    const accepted = new Map<string, number>();
    const start = performance.now();
    const inflight: Promise<void>[] = [];
    for (let i = 0; !until(); i++) {
      const wait = start + (i * 1000) / OTHER_RATE - performance.now();
      if (wait > 0) await sleep(wait);
      const sent = performance.now();
      inflight.push(
        opsflow.POST('/v1/events', { body: { type: 'bench.free', payload: { i } } }).then(({ data }) => {
          if (data) accepted.set(data.eventId, sent);
        }),
      );
    }
    await Promise.all(inflight);
    const deadline = performance.now() + 60_000;
    while ([...accepted.keys()].some((id) => !free.first.has(id)) && performance.now() < deadline) await sleep(200);
    return [...accepted.entries()]
      .map(([id, at]) => (free.first.get(id) ?? NaN) - at)
      .filter((x) => !Number.isNaN(x))
      .sort((a, b) => a - b);
  }

  const baselineEnd = performance.now() + BASELINE_SECONDS * 1000;
  const baseline = await publishFree(() => performance.now() >= baselineEnd);

  const started = performance.now();
  const recover = await opsflow.POST('/v1/endpoints/{id}/recover', {
    params: { path: { id: limitedId } },
    body: { since: new Date(Date.now() - 3600_000).toISOString(), status: 'failed' },
  });
  if (!recover.data) throw new Error(`recover refused: ${JSON.stringify(recover.error)}`);
  console.log(`recover ${recover.data.id}: ${recover.data.total} deliveries`);
  let done = false;
  const during = publishFree(() => done || performance.now() - started > 20 * 60_000);
  let lastLog = 0;
  while (limited.first.size < DELIVERIES && performance.now() - started < 30 * 60_000) {
    await sleep(1000);
    if (performance.now() - lastLog > 30_000) {
      lastLog = performance.now();
      console.log(
        `  ${limited.first.size} of ${DELIVERIES} received after ${((lastLog - started) / 1000).toFixed(0)} s`,
      );
    }
  }
  done = true;
  const tookS = (performance.now() - started) / 1000;
  const duringLatencies = await during;
  await sleep(3000); // anything late or duplicated
  const arrivals = [...limited.all].sort((a, b) => a - b);
  const maxPerSecond = maxInWindow(arrivals, 1000);
  const sustained = arrivals.length > 1 ? (arrivals.length - 1) / ((arrivals.at(-1)! - arrivals[0]!) / 1000) : NaN;
  const state = await opsflow.GET('/v1/recovers/{id}', { params: { path: { id: recover.data.id } } });

  const ms = (x: number) => `${Math.round(x)} ms`;
  const lines = [
    '## Per-endpoint rate limit under a recover (`npm run bench:rate-limit`)',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version},`,
    'Temporal dev server, two worker processes sharing the limit, API and receivers on loopback. The limited',
    `endpoint's ${DELIVERIES} dead-lettered deliveries are recovered by one \`POST /v1/endpoints/{id}/recover\`; an`,
    `unlimited endpoint is published to at ${OTHER_RATE} events/s before (${BASELINE_SECONDS} s) and during it.`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| limit | ${LIMIT}/s (admission window ${WINDOW_MS} ms: ${((LIMIT * 1000) / WINDOW_MS).toFixed(1)}/s sustained at most) |`,
    `| most requests at the limited receiver in any one second (sliding window, by arrival) | **${maxPerSecond}** |`,
    `| sustained rate at the limited receiver | ${sustained.toFixed(2)}/s |`,
    `| recover: all ${DELIVERIES} received after | ${tookS.toFixed(0)} s (state ${state.data?.state}, ${state.data?.resent} of ${state.data?.total} sent again) |`,
    `| received / duplicated / missing | ${limited.first.size} / ${arrivals.length - limited.first.size} / ${DELIVERIES - limited.first.size} |`,
    `| unlimited endpoint before: p50 / p99 (n) | ${ms(pct(baseline, 50))} / ${ms(pct(baseline, 99))} (${baseline.length}) |`,
    `| unlimited endpoint during the recover: p50 / p99 (n) | ${ms(pct(duringLatencies, 50))} / ${ms(pct(duringLatencies, 99))} (${duringLatencies.length}) |`,
    '',
  ];
  console.log(lines.join('\n'));
  await writeResultsSection('## Per-endpoint rate limit under a recover', lines);

  api.close();
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
  await client.connection.close();
  await pool.end();
  limited.server.close();
  free.server.close();
  await server.stop();
  await dropBenchDatabase(dbName);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
