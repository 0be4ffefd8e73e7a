/**
 * `npm run bench:paths`: what one webhook delivery costs against what Temporal itself cannot go below, all in
 * one run on one server (throughput on this machine is noisy; ratios from the same run are not).
 *
 * BENCH_PATHS (default `floor,classic,fast,fifo`):
 * - floor: bare workflows with no opsflow code (bench/floor/workflows.ts) — empty, one local activity, one
 *   activity — each started normally and eagerly; and the local-activity one made as searchable as a delivery
 *   (a delivery's search attributes and summary at start, the status upserted at the end; eager only);
 * - classic: deliveries through the API with WEBHOOK_DELIVERY_PATH=classic (webhookDelivery);
 * - fast: the same with WEBHOOK_DELIVERY_PATH=fast (webhookDeliveryFast, started eagerly);
 * - fifo: BENCH_FIFO_N (200) events to one ordered endpoint, published one after another: deliveries/s with one
 *   in flight, and per delivery its child workflow's history plus its share of the sequencer's.
 * The floor, classic and fast rows run BENCH_N (1,500) workflows each, in BENCH_ROUNDS (3) interleaved rounds
 * (each round starts one row later), BENCH_INFLIGHT (200) in flight; an operation ends when its workflow has
 * closed (one result long-poll each on the workers' native connection, for every row alike). For each:
 * workflows/s (and its rounds' lowest and highest), and per workflow the history events, workflow tasks and
 * activity tasks (from 20 sampled histories) and CPU-ms of the Temporal server, of this process (the worker,
 * the API and the load: one process, as `npm start` runs them — eager start needs the starter and the worker
 * on one connection) and of PostgreSQL; each as a ratio of the "local activity + eager" floor. Then the fast
 * path's latency at 20/s (publish accepted → receiver has it), and a backlog: BENCH_BACKLOG (10,000) events
 * published with no worker running, then the worker started — time to drain and this process's peak RSS.
 *
 * WORKER_MAX_CONCURRENT_WORKFLOW_TASKS, when set, is passed to the worker (the slots eager starts need).
 *
 * BENCH_TEMPORAL=cluster runs it against the production topology's Temporal server on PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { startApi, type RunningApi } from '../api/server.js';
import { loadConfig, type Config } from '../lib/config.js';
import { createPool, ensureDatabase, migrate } from '../lib/db.js';
import { historyCost } from '../lib/history-cost.js';
import { interleavedMeasurer, pathsReport, type Row, type Spec } from './paths-measure.js';
import { createLogger } from '../lib/logger.js';
import { connectClient, temporalSettings } from '../lib/temporal.js';
import { OpsKind, OpsStatus, WebhookEndpointId, WebhookEvent, WebhookHost } from '../lib/search-attributes.js';
import { runWorkers, type RunningWorkers } from '../worker/main.js';
import { deliveryWorkflowId, fifoWorkflowId } from '../lib/webhooks/contract.js';
import {
  cpuSeconds,
  dropBenchDatabase,
  freePort,
  jsonPoster,
  postgresCpuSeconds,
  root,
  rssMb,
  serverRequests,
  sampleRss,
  sleep,
  startBenchTemporal,
  writeResultsSection,
} from './common.js';

const N = Number(process.env.BENCH_N ?? 1500);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 200);
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 10_000);
const FIFO_N = Number(process.env.BENCH_FIFO_N ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PATHS = (process.env.BENCH_PATHS ?? 'floor,classic,fast,fifo').split(',').map((p) => p.trim());
const ON_CLUSTER = process.env.BENCH_TEMPORAL === 'cluster';
const ON_COMPOSE = process.env.BENCH_TEMPORAL === 'compose';
const API_KEY = 'bench-key-0123456789abcdef-0123456789';
const FLOOR_QUEUE = 'bench-floor';
const LOW_RATE = 20;
const LOW_SECONDS = 15;
const SAMPLE = 20;

async function main() {
  const dbName = `opsflow_bench_paths_${process.pid}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, 4);
  await migrate(pool);

  const server = await startBenchTemporal(ON_CLUSTER);
  const env = (extra: Record<string, string> = {}) => ({
    TEMPORAL_ADDRESS: server.address,
    DATABASE_URL: databaseUrl,
    OPSFLOW_API_KEYS: API_KEY,
    OPSFLOW_ENCRYPTION_KEY: encryptionKey,
    OPSFLOW_TASK_QUEUE_PREFIX: 'bench',
    OPSFLOW_WORKER_FAMILIES: 'webhooks',
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
    API_RATE_LIMIT_PER_MINUTE: '1000000',
    LOG_LEVEL: 'warn',
    ...(process.env.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS
      ? { WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: process.env.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS }
      : {}),
    OPSFLOW_DATA_DIR: path.join(os.tmpdir(), `opsflow-bench-paths-${process.pid}`),
    ...extra,
  });
  const encryptionKey = randomBytes(32).toString('base64');
  const log = createLogger('warn');
  const config = (extra: Record<string, string> = {}): Config => loadConfig(env(extra));

  // Receiver: when each webhook-id first arrived.
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

  const plain = await connectClient(temporalSettings(config()));
  let workers: RunningWorkers | undefined = await runWorkers({ config: config(), log });
  const shared = new Client({ connection: workers.connection, namespace: 'default' });

  /** An API on its own port: its client on the workers' connection, deliveries on the given path. */
  async function api(deliveryPath: 'fast' | 'classic', on: RunningWorkers | undefined): Promise<RunningApi> {
    const port = await freePort();
    return startApi({
      config: config({ WEBHOOK_DELIVERY_PATH: deliveryPath, PORT: String(port), HOST: '127.0.0.1' }),
      log,
      apiKeys: [API_KEY],
      ...(on ? { workerConnection: on.connection } : {}),
    });
  }
  const call = jsonPoster(API_KEY, INFLIGHT + 50);
  const eventType = `bench.paths.${randomBytes(3).toString('hex')}`;
  const setupApi = await api('fast', workers);
  await call(setupApi.url, '/v1/endpoints', { url: receiverUrl, eventTypes: [eventType], retrySchedule: ['0s', '1s'] });

  const cpuNow = async () => ({
    temporal: await cpuSeconds(server.process.pid!),
    process: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    postgres: await postgresCpuSeconds(),
  });

  const rpcCounts = async () => (server.metricsUrl ? serverRequests(server.metricsUrl) : new Map<string, number>());
  const measureInterleaved = interleavedMeasurer({
    n: N,
    rounds: ROUNDS,
    inflight: INFLIGHT,
    sample: SAMPLE,
    cpuNow,
    rpcCounts,
  });

  const run = `${Date.now().toString(36)}`;
  const specs: Spec[] = [];
  let floorWorker: { shutdown(): Promise<void> } | undefined;
  if (PATHS.includes('floor')) {
    const bundle = await bundleWorkflowCode({ workflowsPath: path.join(root, 'bench', 'floor', 'workflows.ts') });
    const worker = await Worker.create({
      connection: workers.connection,
      namespace: 'default',
      taskQueue: FLOOR_QUEUE,
      workflowBundle: bundle,
      activities: { floorNoop: async () => {} },
      maxConcurrentWorkflowTaskExecutions: config().workerTuning.maxConcurrentWorkflowTasks,
    });
    const running = worker.run();
    floorWorker = {
      shutdown: async () => {
        worker.shutdown();
        await running;
      },
    };
    const host = new URL(receiverUrl).host;
    for (const type of ['floorEmpty', 'floorLocalActivity', 'floorActivity']) {
      for (const eager of [false, true]) {
        const client = eager ? shared : plain;
        specs.push({
          name: `${type}${eager ? ' + eager' : ''}`,
          op: async (i) => {
            const handle = await client.workflow.start(type, {
              taskQueue: FLOOR_QUEUE,
              workflowId: `floor-${run}-${type}-${eager}-${i}`,
              requestEagerStart: eager,
            });
            await handle.result();
            return handle;
          },
        });
      }
    }
    // Eager only: the comparison is with the fast path, which starts eagerly.
    specs.push({
      name: 'floorSearchable + eager',
      op: async (i) => {
        const handle = await shared.workflow.start('floorSearchable', {
          taskQueue: FLOOR_QUEUE,
          workflowId: `floor-${run}-searchable-${i}`,
          requestEagerStart: true,
          typedSearchAttributes: [
            { key: OpsKind, value: 'webhook' },
            { key: OpsStatus, value: 'pending' },
            { key: WebhookEvent, value: eventType },
            { key: WebhookEndpointId, value: 'ep_bench_floor' },
            { key: WebhookHost, value: host },
          ],
          staticSummary: `${eventType} → ${host}`,
        });
        await handle.result();
        return handle;
      },
    });
  }
  const pathApis: RunningApi[] = [];
  /** Result polls made before the delivery's workflow existed, by path. */
  const earlyPolls = new Map<string, number>();
  for (const deliveryPath of ['classic', 'fast'] as const) {
    if (!PATHS.includes(deliveryPath)) continue;
    const a = await api(deliveryPath, workers);
    pathApis.push(a);
    specs.push({
      name: `${deliveryPath} delivery`,
      op: async (i) => {
        const event = await call(a.url, '/v1/events', { type: eventType, payload: { i } });
        // Awaited on the workers' native connection, as the eager floor's workflows are (the pure-JS gRPC client
        // costs this process more per long-poll than the native one).
        const handle = shared.workflow.getHandle(deliveryWorkflowId(event.deliveries[0]!.id));
        // 202 means stored: under load the API answers before every start has gone out (after at most 0.8 s).
        // Each early poll is an RPC the server answers "not found" — load, not delivery: counted, and spaced out.
        for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
          try {
            await handle.result();
            return handle;
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
            earlyPolls.set(deliveryPath, (earlyPolls.get(deliveryPath) ?? 0) + 1);
            await sleep(wait);
          }
        }
      },
    });
  }
  const rows: Row[] = specs.length > 0 ? await measureInterleaved(specs) : [];
  await floorWorker?.shutdown();
  for (const a of pathApis) await a.close();

  // An ordered endpoint: one delivery in flight, each a child of the endpoint's sequencer.
  if (PATHS.includes('fifo')) {
    const fifoType = `${eventType}.fifo`;
    await call(setupApi.url, '/v1/endpoints', {
      url: receiverUrl,
      eventTypes: [fifoType],
      retrySchedule: ['0s', '1s'],
      ordering: 'fifo',
    });
    const fifoApi = await api('fast', workers);
    const ids: string[] = [];
    const undelivered = async () =>
      Number(
        (
          await pool.query<{ n: string }>(
            `SELECT count(*) AS n FROM opsflow.webhook_deliveries WHERE status <> 'delivered' AND event_type = $1`,
            [fifoType],
          )
        ).rows[0]!.n,
      );
    const cpu0 = await cpuNow();
    const start = performance.now();
    for (let i = 0; i < FIFO_N; i++) {
      ids.push((await call(fifoApi.url, '/v1/events', { type: fifoType, payload: { i } })).deliveries[0]!.id);
    }
    while ((await undelivered()) > 0) await sleep(100);
    const seconds = (performance.now() - start) / 1000;
    const cpu1 = await cpuNow();
    await fifoApi.close();
    const endpointId = (
      await pool.query<{ endpoint_id: string }>('SELECT endpoint_id FROM opsflow.webhook_deliveries WHERE id = $1', [
        ids[0],
      ])
    ).rows[0]!.endpoint_id;
    const sequencer = historyCost(await plain.workflow.getHandle(fifoWorkflowId(endpointId)).fetchHistory());
    const children = await Promise.all(
      ids
        .slice(0, SAMPLE)
        .map(async (id) => historyCost(await plain.workflow.getHandle(deliveryWorkflowId(id)).fetchHistory())),
    );
    const mean = (f: (c: (typeof children)[number]) => number) =>
      children.reduce((a, c) => a + f(c), 0) / children.length;
    rows.push({
      name: `fifo delivery (one endpoint, ${FIFO_N} events)`,
      perSecond: FIFO_N / seconds,
      events: mean((c) => c.events) + sequencer.events / FIFO_N,
      workflowTasks: mean((c) => c.workflowTasks) + sequencer.workflowTasks / FIFO_N,
      activityTasks: mean((c) => c.activityTasks) + sequencer.activityTasks / FIFO_N,
      cpuMs: {
        temporal: ((cpu1.temporal - cpu0.temporal) * 1000) / FIFO_N,
        process: ((cpu1.process - cpu0.process) * 1000) / FIFO_N,
        postgres: ((cpu1.postgres - cpu0.postgres) * 1000) / FIFO_N,
      },
    });
    process.stdout.write(`fifo: ${(FIFO_N / seconds).toFixed(1)}/s, sequencer ${sequencer.events} events\n`);
  }

  // The fast path below capacity: accepted → received, at 20/s.
  const fastApi = await api('fast', workers);
  const latencies: number[] = [];
  let lowLost = 0;
  {
    const start = performance.now();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < LOW_RATE * LOW_SECONDS; i++) {
      const wait = start + (i * 1000) / LOW_RATE - performance.now();
      if (wait > 0) await sleep(wait);
      pending.push(
        call(fastApi.url, '/v1/events', { type: eventType, payload: { low: i } }).then(async (e) => {
          const accepted = performance.now();
          const deadline = accepted + 60_000;
          while (!arrivals.has(e.eventId) && performance.now() < deadline) await sleep(5);
          if (arrivals.has(e.eventId)) latencies.push(arrivals.get(e.eventId)! - accepted);
          else lowLost += 1;
        }),
      );
    }
    await Promise.all(pending);
    latencies.sort((x, y) => x - y);
  }
  await fastApi.close();

  // Backlog: events accepted while no worker runs, then one worker drains them.
  await workers.shutdown();
  workers = undefined;
  const backlogApi = await api('fast', undefined);
  let published = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (published < BACKLOG) {
        published += 1;
        await call(backlogApi.url, '/v1/events', { type: eventType, payload: { backlog: published } });
      }
    }),
  );
  const publishSeconds = (performance.now() - t0) / 1000;
  await backlogApi.close();
  const pending = async () =>
    Number(
      (
        await pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM opsflow.webhook_deliveries WHERE status <> 'delivered' AND event_type = $1`,
          [eventType],
        )
      ).rows[0]!.n,
    );
  const rssBefore = await rssMb(process.pid);
  const rss = sampleRss(process.pid);
  const d0 = performance.now();
  workers = await runWorkers({ config: config(), log });
  while ((await pending()) > 0) await sleep(500);
  const drainSeconds = (performance.now() - d0) / 1000;
  const peakRss = rss.stop();

  const lines = pathsReport({
    temporal: ON_COMPOSE ? 'compose' : ON_CLUSTER ? 'cluster' : 'dev',
    n: N,
    rounds: ROUNDS,
    inflight: INFLIGHT,
    rows,
    earlyPolls,
    low: { rate: LOW_RATE, seconds: LOW_SECONDS, latencies, lost: lowLost },
    backlog: { events: BACKLOG, publishSeconds, drainSeconds, rssBefore, peakRss },
  });
  process.stdout.write(`\n${lines.join('\n')}\n`);
  await writeResultsSection(lines[0]!.replace(/ \(`.*$/, ''), lines);

  await workers.shutdown();
  await setupApi.close();
  receiver.close();
  await plain.connection.close();
  await pool.end();
  await server.stop();
  await dropBenchDatabase(dbName);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
