/**
 * `npm run bench:scale`: how cost grows with the work, in 10× steps, on this machine — a Temporal dev server, one
 * worker process (every family), the API in this process, PostgreSQL, a loopback receiver.
 *
 * 1. Subscriptions (BENCH_SUBSCRIPTIONS, default 1000,10000; add 100000 for the issue's top step): imported
 *    through POST /v1/subscriptions:batch (1,000 per request, 2 requests in flight) up to each size; per step the
 *    import time and rate, the batch answers' p50/p99, the time until every workflow is started, the worker's
 *    RSS, the daily sweep's duration, single PUTs at 20 in flight (p50/p99), and one reminder round: 50
 *    subscriptions whose reminder falls due 30 s later, and how late they were sent.
 * 2. Fan-out (BENCH_FANOUT, default 10,100,1000): one event to that many endpoints — how long the API took to
 *    answer, and until every endpoint had it.
 * 3. History (BENCH_HISTORY, default 10000,100000,1000000 attempt rows, two per delivery, ten deliveries per
 *    event, 4 % dead-lettered): the median answer of each list route, one delivery, /metrics and /v1/status, and
 *    whether any of them made PostgreSQL read a history table sequentially (pg_stat_user_tables.seq_scan).
 * Figures are printed and written to bench/RESULTS.md ("## Scale").
 */
import os from 'node:os';
import { loadConfig } from '../lib/config.js';
import { taskQueues } from '../lib/task-queues.js';
import { SUBSCRIPTION_SWEEP_WORKFLOW, SUBSCRIPTION_WORKFLOW } from '../lib/subscriptions/contract.js';
import { HISTORY_TABLES, seedHistory, seqScans } from './history-seed.js';
import { ms, pct, rssMb, secs as s, sleep, writeResultsSection } from './common.js';
import { BENCH_API_KEY as API_KEY, benchStack } from './stack.js';

const sizes = (name: string, fallback: string) =>
  (process.env[name] ?? fallback)
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
const SUBSCRIPTIONS = sizes('BENCH_SUBSCRIPTIONS', '1000,10000');
const FANOUT = sizes('BENCH_FANOUT', '10,100,1000');
const HISTORY = sizes('BENCH_HISTORY', '10000,100000,1000000');

async function main() {
  const arrivals = new Map<string, number>(); // `${webhook-id} ${path}` → when
  const stack = await benchStack('scale', (req, res) => {
    const key = `${String(req.headers['webhook-id'])} ${req.url}`;
    req.resume();
    req.on('end', () => {
      if (!arrivals.has(key)) arrivals.set(key, performance.now());
      res.writeHead(200).end();
    });
  });
  const { pool, client, env, receiverUrl, count, until } = stack;
  const config = loadConfig(env);
  const queues = taskQueues('bench');
  const worker = stack.spawnWorker();
  const api = await stack.serveApi(config);
  const { opsflow } = api;
  const sub = (id: string, expiresAt: string, extra: Record<string, unknown> = {}) => ({
    id,
    tenantId: 'bench',
    email: `${id}@example.com`,
    expiresAt,
    ...extra,
  });
  async function importAll(items: ReturnType<typeof sub>[]) {
    const latencies: number[] = [];
    const batches: (typeof items)[] = [];
    for (let i = 0; i < items.length; i += 1000) batches.push(items.slice(i, i + 1000));
    let next = 0;
    const lane = async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        const t = performance.now();
        const { data, error } = await opsflow.POST('/v1/subscriptions:batch', { body: { items: batch as never } });
        if (!data || data.created + data.unchanged !== batch.length) {
          throw new Error(`batch refused: ${JSON.stringify(error ?? data?.results.find((r) => r.error))}`);
        }
        latencies.push(performance.now() - t);
      }
    };
    await Promise.all([lane(), lane()]);
    return latencies.sort((a, b) => a - b);
  }

  // Warm up: the worker bundles workflows at start.
  await importAll([sub('warm-0', new Date(Date.now() + 30 * 86_400_000).toISOString())]);
  await until(
    'the warm-up workflow',
    async () =>
      (await count(`SELECT count(*) AS n FROM opsflow.subscriptions WHERE workflow_started_at IS NOT NULL`)) === 1,
    120_000,
  );
  await sleep(3000);

  const subRows: string[] = [];
  let imported = 0;
  for (const size of SUBSCRIPTIONS) {
    const base = Date.now() + 30 * 86_400_000;
    const items = Array.from({ length: size - imported }, (_, i) =>
      sub(`s-${imported + i}`, new Date(base + (imported + i) * 1000).toISOString()),
    );
    const t0 = performance.now();
    const latencies = await importAll(items);
    const importMs = performance.now() - t0;
    await until(
      'every workflow started',
      async () =>
        (await count(`SELECT count(*) AS n FROM opsflow.subscriptions WHERE workflow_started_at IS NULL`)) === 0,
      3 * 3600_000,
    );
    const startedMs = performance.now() - t0;
    imported = size;
    await sleep(5000);
    const rss = await rssMb(worker.pid!);

    // The sweep reads the running workflows from visibility, which the dev server fills asynchronously: right
    // after a burst of starts it lags, and every row it has not listed yet costs the sweep a start attempt. The
    // daily sweep runs hours after its rows were imported, so wait for visibility to catch up, and report how long.
    const expected = await count(`SELECT count(*) AS n FROM opsflow.subscriptions WHERE status IN ('active', 'grace')`);
    const lagStart = performance.now();
    for (;;) {
      const { count: listed } = await client.workflow.count(
        `WorkflowType = '${SUBSCRIPTION_WORKFLOW}' AND ExecutionStatus = 'Running'`,
      );
      if (listed >= expected || performance.now() - lagStart > 600_000) break;
      await sleep(1000);
    }
    const lagMs = performance.now() - lagStart;
    const sweepStart = performance.now();
    await client.workflow.execute(SUBSCRIPTION_SWEEP_WORKFLOW, {
      taskQueue: queues.subscriptions,
      workflowId: `bench-sweep-${size}`,
      args: [{ windowMs: 3600_000, alertThreshold: 1_000_000 }],
    });
    const sweepMs = performance.now() - sweepStart;
    // Where the sweep's time went: waiting in the task queue (behind the first tasks of just-started workflows)
    // or in its own activity (listing and paging).
    const sweepEvents = (await client.workflow.getHandle(`bench-sweep-${size}`).fetchHistory()).events ?? [];
    const at = (pick: (e: (typeof sweepEvents)[number]) => unknown) => {
      const e = sweepEvents.find((x) => pick(x) != null);
      return e?.eventTime ? Number(e.eventTime.seconds) * 1000 + (e.eventTime.nanos ?? 0) / 1e6 : NaN;
    };
    const activityMs =
      at((e) => e.activityTaskCompletedEventAttributes) - at((e) => e.activityTaskStartedEventAttributes);

    // Single PUTs at 20 in flight.
    const putLatencies: number[] = [];
    let putNext = 0;
    const putLane = async () => {
      while (putNext < 200) {
        const id = `put-${size}-${putNext++}`;
        const t = performance.now();
        const { response } = await opsflow.PUT('/v1/subscriptions/{id}', {
          params: { path: { id } },
          body: { tenantId: 'bench', email: `${id}@example.com`, expiresAt: new Date(base).toISOString() },
        });
        if (response.status !== 201) throw new Error(`PUT answered ${response.status}`);
        putLatencies.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: 20 }, putLane));
    putLatencies.sort((a, b) => a - b);

    // One reminder round: 50 reminders due 30 s from now (expiry in 90 s, offset 60 s, exact time).
    const expiry = new Date(Date.now() + 90_000).toISOString();
    await importAll(
      Array.from({ length: 50 }, (_, i) => sub(`due-${size}-${i}`, expiry, { reminderOffsets: ['60s'], sendAt: null })),
    );
    await until(
      'the reminder round',
      async () =>
        (await count(
          `SELECT count(*) AS n FROM opsflow.subscription_notifications WHERE subscription_id LIKE $1 AND milestone = '1m'`,
          [`due-${size}-%`],
        )) === 50,
      600_000,
    );
    const late = (
      await pool.query<{ late_ms: number }>(
        `SELECT extract(epoch FROM sent_at - (expires_at - interval '60 seconds')) * 1000 AS late_ms
         FROM opsflow.subscription_notifications WHERE subscription_id LIKE $1 AND milestone = '1m'`,
        [`due-${size}-%`],
      )
    ).rows
      .map((r) => Number(r.late_ms))
      .sort((a, b) => a - b);
    const rssAfter = await rssMb(worker.pid!);
    const row = `| ${size.toLocaleString('en')} | ${s(importMs)} (${((items.length / importMs) * 1000).toFixed(0)}/s) | ${ms(pct(latencies, 50))} / ${ms(pct(latencies, 99))} | ${s(startedMs)} (${((items.length / startedMs) * 1000).toFixed(0)}/s) | ${rss.toFixed(0)} MB → ${rssAfter.toFixed(0)} MB | ${s(lagMs)} | ${s(sweepMs)} (activity ${s(activityMs)}) | ${ms(pct(putLatencies, 50))} / ${ms(pct(putLatencies, 99))} | ${ms(pct(late, 50))} / ${ms(late.at(-1)!)} |`;
    subRows.push(row);
    process.stdout.write(`${row}\n`);
  }

  let histHeader: string[] = [];
  const fanRows: string[] = [];
  let endpoints = 0;
  for (const size of FANOUT) {
    const type = `fan.${size}`;
    for (let i = 0; i < size; i++) {
      const { response } = await opsflow.POST('/v1/endpoints', {
        body: { url: `${receiverUrl}/${type}/${i}`, eventTypes: [type], retrySchedule: ['0s', '5s', '30s'] },
      });
      if (response.status !== 201) throw new Error(`endpoint refused: ${response.status}`);
    }
    endpoints += size;
    const t0 = performance.now();
    const { data } = await opsflow.POST('/v1/events', { body: { type, payload: { size } } });
    const answeredMs = performance.now() - t0;
    if (!data || data.deliveries.length !== size) throw new Error('fan-out event refused or short');
    const keys = Array.from({ length: size }, (_, i) => `${data.eventId} /${type}/${i}`);
    const deadline = performance.now() + 600_000;
    while (keys.some((k) => !arrivals.has(k)) && performance.now() < deadline) await sleep(100);
    const received = keys.filter((k) => arrivals.has(k)).length;
    const allMs = Math.max(...keys.map((k) => arrivals.get(k) ?? NaN)) - t0;
    const row = `| ${size.toLocaleString('en')} | ${ms(answeredMs)} | ${received === size ? s(allMs) : `${received} of ${size} after 10 min`} | ${((received / allMs) * 1000).toFixed(0)}/s |`;
    fanRows.push(row);
    process.stdout.write(`${row}\n`);
  }

  // History: synthetic rows straight into PostgreSQL (the routes read them as they read real ones).
  const histEndpoints: string[] = [];
  for (let i = 0; i < 10; i++) {
    const { data } = await opsflow.POST('/v1/endpoints', {
      body: { url: `${receiverUrl}/hist/${i}`, eventTypes: ['hist.unused'] },
    });
    histEndpoints.push(data!.id);
  }
  const HOT = HISTORY_TABLES;
  const histRows: string[] = [];
  let attempts = 0;
  for (const size of HISTORY) {
    const from = attempts / 2 + 1;
    const to = size / 2; // deliveries
    await seedHistory(pool, from, to, histEndpoints);
    attempts = size;
    const routes: [string, string][] = [
      ['deliveries, newest first', '/v1/deliveries'],
      ['deliveries by status', '/v1/deliveries?status=dead_lettered'],
      ['deliveries by endpoint', `/v1/deliveries?endpointId=${histEndpoints[3]}`],
      ['deliveries by event type', '/v1/deliveries?eventType=hist.e7'],
      ['deliveries, page 20', ''],
      ['one delivery with its attempts', `/v1/deliveries/hdl_${Math.floor(to / 2)}`],
      ['dead letters', '/v1/dead-letters'],
      ['endpoints', '/v1/endpoints'],
      ['status', '/v1/status'],
      ['metrics scrape', '/metrics'],
    ];
    // Page 20 of the unfiltered list: follow the cursor.
    let cursor: string | null = null;
    for (let i = 0; i < 19; i++) {
      const page = (await (
        await fetch(`${api.url}/v1/deliveries${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`, {
          headers: { authorization: `Bearer ${API_KEY}` },
        })
      ).json()) as { nextCursor: string | null };
      cursor = page.nextCursor;
    }
    routes[4]![1] = `/v1/deliveries?cursor=${encodeURIComponent(cursor ?? '')}`;
    const cells: string[] = [];
    // A backend publishes its table statistics when it has been idle a while (up to 10 s): a quiet period before
    // and after the routes, so the counters hold exactly what the routes did (nothing else reads these tables).
    await sleep(11_000);
    const before = await seqScans(pool);
    for (const [name, url] of routes) {
      const times: number[] = [];
      for (let i = 0; i < 8; i++) {
        const t = performance.now();
        const res = await fetch(`${api.url}${url}`, {
          headers: { authorization: `Bearer ${API_KEY}` },
        });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`${url} answered ${res.status}`);
        if (i > 0) times.push(performance.now() - t); // the first is a warm-up
      }
      cells.push(
        ms(
          pct(
            times.sort((a, b) => a - b),
            50,
          ),
        ),
      );
      process.stdout.write(`history ${size}: ${name} ${cells.at(-1)}\n`);
    }
    await sleep(11_000);
    const after = await seqScans(pool);
    const scanned = HOT.filter((t) => (after[t] ?? 0) > (before[t] ?? 0)).map(
      (t) => `${t} ×${(after[t] ?? 0) - (before[t] ?? 0)}`,
    );
    const row = `| ${size.toLocaleString('en')} | ${cells.join(' | ')} | ${scanned.length > 0 ? scanned.join('; ') : 'none'} |`;
    histRows.push(row);
    process.stdout.write(`${row}\n`);
    histHeader = routes.map(([name]) => name);
  }

  const lines = [
    '## Scale (`npm run bench:scale`)',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version};`,
    `Temporal dev server (SQLite in memory), one worker process with every family (WORKER_MAX_CACHED_WORKFLOWS ${config.workerTuning.maxCachedWorkflows} per family worker), the API in the bench process, PostgreSQL 15, all on this machine.`,
    '',
    '**Subscriptions** — imported with `POST /v1/subscriptions:batch` (1,000 per request, 2 in flight) up to each size:',
    '',
    '| live subscriptions | import (rows accepted) | batch answer p50 / p99 | every workflow started | worker RSS (settled → after the round) | visibility caught up after | sweep (of which its activity) | single PUT p50 / p99 at 20 in flight | 50 reminders due together: late p50 / max |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...subRows,
    '',
    `**Fan-out** — one event to N endpoints (endpoints cumulative: ${endpoints} at the end), WORKFLOW_START_CONCURRENCY ${config.startConcurrency}:`,
    '',
    '| endpoints | API answered | every endpoint had it | deliveries/s |',
    '| --- | --- | --- | --- |',
    ...fanRows,
    '',
    '**History** — attempt rows in the state database (median of 7 answers after a warm-up; sequential scans of the',
    'history tables counted in pg_stat_user_tables over all 80 requests of a size, after a quiet period):',
    '',
    `| attempt rows | ${histHeader.join(' | ')} | sequential scans |`,
    `| --- | ${histHeader.map(() => '---').join(' | ')} | --- |`,
    ...histRows,
    '',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
  await writeResultsSection('## Scale', lines);

  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  api.close();
  await stack.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
