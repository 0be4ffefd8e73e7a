/**
 * `npm run bench:console`: the console's pages over a growing webhook history — 10k → 100k → 1M attempt rows
 * (BENCH_HISTORY), synthetic rows straight into PostgreSQL (bench/history-seed.ts; the triggers keep the
 * hourly rollup as they do for real attempts). For each size: the median answer of each page (7 answers
 * after a warm-up, logged in as a console session) and whether any made PostgreSQL read a history table
 * sequentially. The API runs in this process against a dev server; no workers are needed to read.
 * Figures go to bench/RESULTS.md ("Console").
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { createApp } from '../api/app.js';
import { loadConfig } from '../lib/config.js';
import { createPool, ensureDatabase, migrate } from '../lib/db.js';
import { createLogger } from '../lib/logger.js';
import { taskQueues } from '../lib/task-queues.js';
import { connectClient, temporalSettings } from '../lib/temporal.js';
import { dropBenchDatabase, freePort, sleep, startBenchTemporal, writeResultsSection } from './common.js';
import { HISTORY_TABLES, seedHistory, seqScans } from './history-seed.js';

const API_KEY = 'bench-key-0123456789abcdef-0123456789';
const HISTORY = (process.env.BENCH_HISTORY ?? '10000,100000,1000000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const PAGES: [string, string][] = [
  ['overview', '/console'],
  ['webhooks 24 h', '/console/webhooks'],
  ['webhooks 7 d', '/console/webhooks?range=7d'],
  ['subscriptions', '/console/subscriptions'],
  ['backups', '/console/backups'],
  ['deploys', '/console/deploys'],
  ['schedules', '/console/schedules'],
];

async function main() {
  const dbName = `opsflow_bench_console_${process.pid}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, 10);
  await migrate(pool);
  const server = await startBenchTemporal(false);
  const config = loadConfig({
    TEMPORAL_ADDRESS: server.address,
    DATABASE_URL: databaseUrl,
    OPSFLOW_API_KEYS: API_KEY,
    OPSFLOW_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    OPSFLOW_TASK_QUEUE_PREFIX: 'bench',
    API_RATE_LIMIT_PER_MINUTE: '1000000',
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
    TEMPORAL_UI_URL: 'http://127.0.0.1:8233',
    LOG_LEVEL: 'warn',
    OPSFLOW_DATA_DIR: path.join(os.tmpdir(), `opsflow-bench-console-${process.pid}`),
  });
  const client = await connectClient(temporalSettings(config));
  const app = createApp({
    config,
    apiKeys: [API_KEY],
    pool,
    temporal: client,
    queues: taskQueues('bench'),
    log: createLogger('warn'),
  });
  const port = await freePort();
  const api = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
  const base = `http://127.0.0.1:${port}`;

  const login = await fetch(`${base}/console/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ key: API_KEY }).toString(),
    redirect: 'manual',
  });
  const cookie = /opsflow_session=[^;]+/.exec(login.headers.get('set-cookie') ?? '')?.[0];
  if (login.status !== 303 || !cookie) throw new Error(`console login answered ${login.status}`);

  const endpoints: string[] = [];
  for (let i = 0; i < 10; i++) {
    const res = await fetch(`${base}/v1/endpoints`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      // Never called: the endpoints only own the synthetic deliveries.
      body: JSON.stringify({ url: `http://127.0.0.1:9/hist/${i}`, eventTypes: ['hist.unused'] }),
    });
    if (res.status !== 201) throw new Error(`endpoint refused: ${res.status} ${await res.text()}`);
    endpoints.push(((await res.json()) as { id: string }).id);
  }

  const rows: string[] = [];
  let seeded = 0;
  for (const size of HISTORY) {
    const t0 = performance.now();
    await seedHistory(pool, seeded / 2 + 1, size / 2, endpoints);
    const seedS = (performance.now() - t0) / 1000;
    seeded = size;
    const rollupRows = Number(
      (await pool.query<{ n: string }>('SELECT count(*) AS n FROM opsflow.webhook_attempt_hours')).rows[0]!.n,
    );
    // Statistics reach pg_stat_user_tables when a backend has been idle a while: quiet before and after.
    await sleep(11_000);
    const before = await seqScans(pool);
    const cells: string[] = [];
    for (const [name, url] of PAGES) {
      const times: number[] = [];
      for (let i = 0; i < 8; i++) {
        const t = performance.now();
        const res = await fetch(`${base}${url}`, { headers: { cookie } });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
        if (i > 0) times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      cells.push(`${times[Math.floor(times.length / 2)]!.toFixed(0)} ms`);
      process.stdout.write(`history ${size}: ${name} ${cells.at(-1)}\n`);
    }
    await sleep(11_000);
    const after = await seqScans(pool);
    const scanned = HISTORY_TABLES.filter((t) => (after[t] ?? 0) > (before[t] ?? 0)).map(
      (t) => `${t} ×${(after[t] ?? 0) - (before[t] ?? 0)}`,
    );
    const row = `| ${size.toLocaleString('en')} | ${seedS.toFixed(0)} s | ${rollupRows.toLocaleString('en')} | ${cells.join(' | ')} | ${scanned.length > 0 ? scanned.join('; ') : 'none'} |`;
    rows.push(row);
    process.stdout.write(`${row}\n`);
  }

  const lines = [
    '## Console (`npm run bench:console`)',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}; the API in the bench process, a Temporal dev server, PostgreSQL 15, all on this machine.`,
    'Synthetic history (bench/history-seed.ts: two attempts per delivery, one delivery a second going back from now — so 1M attempt',
    'rows span 5.8 days, inside the 7-day plots; 4 % of deliveries with an open dead letter). Each page: median of 7 answers after a',
    'warm-up, as a logged-in session; the overview and backups pages include `/v1/status` (Temporal calls), the schedules page',
    '`/v1/schedules` (one describe per schedule). Sequential scans of the history tables counted over all 56 requests of a size.',
    '',
    `| attempt rows | seeded in | rollup rows | ${PAGES.map(([n]) => n).join(' | ')} | sequential scans |`,
    `| --- | --- | --- | ${PAGES.map(() => '---').join(' | ')} | --- |`,
    ...rows,
    '',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
  await writeResultsSection('## Console', lines);

  api.close();
  await client.connection.close();
  await pool.end();
  await server.stop();
  await dropBenchDatabase(dbName);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
