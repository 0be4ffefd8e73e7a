/**
 * `npm run bench:interactive`: does bulk work starve interactive work? On this machine — a Temporal dev server,
 * one worker process (every family), the API in this process, PostgreSQL, a loopback receiver — three bulk jobs
 * start together: a 10,000-subscription import (`POST /v1/subscriptions:batch`, 1,000 a request, 2 in flight), one
 * event fanned out to 1,000 endpoints, and a redrive of 10,000 dead letters (`POST /v1/dead-letters/redrive`, 1,000
 * a call). While they run, 20 lanes keep one interactive request each in flight, in turn: a PUT that changes a
 * live subscription (its answer waits for the subscription's workflow to take the update: a workflow task on the
 * subscriptions queue, where the import's 10,000 first tasks are queued), a PUT that creates one, and a publish to
 * one endpoint. Each kind's p50/p99 is taken over the requests made until the three jobs are done.
 *
 * Rounds (BENCH_ROUNDS, `priority:pace` each, default `3:1000,4:8`): BULK_TASK_PRIORITY and
 * BULK_START_CONCURRENCY — 3:1000 is bulk work as it was (the default priority, each job's own 32 starts at once),
 * 4:8 the defaults now (behind interactive work, 8 bulk starts at once per process). Each round first measures
 * the same lanes with nothing else running. Figures are printed and written to bench/RESULTS.md.
 */
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import { loadConfig } from '../lib/config.js';
import { ms, pct, secs as s, sleep, writeResultsSection } from './common.js';
import { benchStack } from './stack.js';

/** `priority:pace` per round: BULK_TASK_PRIORITY and BULK_START_CONCURRENCY. */
const ROUNDS = (process.env.BENCH_ROUNDS ?? '3:1000,4:8').split(',').map((r) => {
  const [priority, pace] = r.split(':').map(Number);
  return { priority: priority!, pace: pace ?? 8 };
});
const IMPORT = Number(process.env.BENCH_IMPORT ?? 10_000);
const FANOUT = Number(process.env.BENCH_FANOUT ?? 1000);
const REDRIVE = Number(process.env.BENCH_REDRIVE ?? 10_000);
const LANES = 20;
/**
 * The interactive lanes stop when the bulk jobs are done or after this long (BENCH_WINDOW_SEC), whichever comes
 * first: with bulk work behind them, 20 lanes always in flight leave it only the gaps, and it can take far longer
 * than the window the latencies need. The jobs' own times are measured to their end either way.
 */
const WINDOW_MS = Number(process.env.BENCH_WINDOW_SEC ?? 300) * 1000;
type Kind = 'change' | 'create' | 'publish';
const workers: ChildProcess[] = [];

async function main() {
  const stack = await benchStack('interactive', (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end());
  });
  const { pool, env: baseEnv, receiverUrl, count, until } = stack;
  const far = (i = 0) => new Date(Date.now() + 30 * 86_400_000 + i * 1000).toISOString();

  const rows: string[] = [];
  for (const { priority, pace } of ROUNDS) {
    const env = { ...baseEnv, BULK_TASK_PRIORITY: String(priority), BULK_START_CONCURRENCY: String(pace) };
    const config = loadConfig(env);
    const worker = stack.spawnWorker(env);
    workers.push(worker);
    const api = await stack.serveApi(config);
    const { opsflow } = api;
    const r = `p${priority}c${pace}`;

    // ---- this round's set-up: live subscriptions to change, endpoints, dead letters ----
    for (let i = 0; i < 100; i++) {
      const { response } = await opsflow.PUT('/v1/subscriptions/{id}', {
        params: { path: { id: `${r}-live-${i}` } },
        body: { tenantId: 'bench', email: `live${i}@example.com`, expiresAt: far(i) },
      });
      if (response.status !== 201) throw new Error(`set-up PUT answered ${response.status}`);
    }
    const ping = await opsflow.POST('/v1/endpoints', {
      body: { url: `${receiverUrl}/ping`, eventTypes: [`${r}.ping`] },
    });
    const fanType = `${r}.fan`;
    for (let i = 0; i < FANOUT; i++) {
      const { response } = await opsflow.POST('/v1/endpoints', {
        body: { url: `${receiverUrl}/${r}/fan/${i}`, eventTypes: [fanType] },
      });
      if (response.status !== 201) throw new Error(`endpoint refused: ${response.status}`);
    }
    const sink = await opsflow.POST('/v1/endpoints', {
      body: { url: `${receiverUrl}/${r}/redrive`, eventTypes: [`${r}.dead`] },
    });
    const sinkId = sink.data!.id;
    // Dead letters to redrive: one event each (a delivery is one event to one endpoint), seeded as if they had failed.
    await pool.query(
      `INSERT INTO opsflow.webhook_events (id, type, body) SELECT $1 || g, $2, '{}' FROM generate_series(1, $3::int) g`,
      [`${r}-dead-`, `${r}.dead`, REDRIVE],
    );
    await pool.query(
      `INSERT INTO opsflow.webhook_deliveries (id, event_id, endpoint_id, event_type, status, attempts, workflow_started_at)
       SELECT $1 || g, $2 || g, $3, $4, 'dead_lettered', 1, now() FROM generate_series(1, $5::int) g`,
      [`${r}-dl-`, `${r}-dead-`, sinkId, `${r}.dead`, REDRIVE],
    );
    await pool.query(
      `INSERT INTO opsflow.dead_letters (id, delivery_id, endpoint_id, event_type, reason)
       SELECT 'dq-' || id, id, endpoint_id, event_type, 'bench' FROM opsflow.webhook_deliveries WHERE endpoint_id = $1`,
      [sinkId],
    );
    await until(
      'the set-up workflows',
      async () =>
        (await count(`SELECT count(*) AS n FROM opsflow.subscriptions WHERE workflow_started_at IS NULL`)) === 0,
      600_000,
    );
    await sleep(5000);

    // ---- interactive lanes: one request each in flight, kinds in turn ----
    let created = 0;
    let changed = 0;
    const request = async (kind: Kind) => {
      const t = performance.now();
      let status: number;
      if (kind === 'change') {
        const i = changed++ % 100;
        ({
          response: { status },
        } = await opsflow.PUT('/v1/subscriptions/{id}', {
          params: { path: { id: `${r}-live-${i}` } },
          body: { tenantId: 'bench', email: `live${i}@example.com`, expiresAt: far(1000 + changed) },
        }));
      } else if (kind === 'create') {
        const id = `${r}-new-${created++}`;
        ({
          response: { status },
        } = await opsflow.PUT('/v1/subscriptions/{id}', {
          params: { path: { id } },
          body: { tenantId: 'bench', email: `${id}@example.com`, expiresAt: far() },
        }));
      } else {
        ({
          response: { status },
        } = await opsflow.POST('/v1/events', { body: { type: `${r}.ping`, payload: {} } }));
      }
      // A refusal is a result too: a 503 here is an update that waited out the API's 10 s for Temporal.
      if (status >= 300) failures[kind].push(status);
      return performance.now() - t;
    };
    let failures: Record<Kind, number[]> = { change: [], create: [], publish: [] };
    const lanes = async (stop: () => boolean) => {
      failures = { change: [], create: [], publish: [] };
      const times: Record<Kind, number[]> = { change: [], create: [], publish: [] };
      const kinds: Kind[] = ['change', 'create', 'publish'];
      await Promise.all(
        Array.from({ length: LANES }, async (_, lane) => {
          for (let n = lane; !stop(); n++) {
            const kind = kinds[n % 3]!;
            times[kind].push(await request(kind));
          }
        }),
      );
      for (const k of kinds) times[k].sort((a, b) => a - b);
      return { times, failed: failures };
    };
    const quietUntil = performance.now() + 15_000;
    const quiet = await lanes(() => performance.now() > quietUntil);

    // ---- the bulk jobs, all at once ----
    const t0 = performance.now();
    const done: Record<'import' | 'fanout' | 'redrive', number> = { import: NaN, fanout: NaN, redrive: NaN };
    let redriveRefused = 0;
    const importJob = (async () => {
      const items = Array.from({ length: IMPORT }, (_, i) => ({
        id: `${r}-imp-${i}`,
        tenantId: 'bench',
        email: `i${i}@example.com`,
        expiresAt: far(i),
      }));
      let next = 0;
      const lane = async () => {
        while (next < items.length) {
          const batch = items.slice(next, (next += 1000));
          const { data } = await opsflow.POST('/v1/subscriptions:batch', { body: { items: batch as never } });
          if (!data || data.created !== batch.length) throw new Error('import batch refused');
        }
      };
      await Promise.all([lane(), lane()]);
      await until(
        'every imported workflow started',
        async () =>
          (await count(
            `SELECT count(*) AS n FROM opsflow.subscriptions WHERE id LIKE $1 AND workflow_started_at IS NULL`,
            [`${r}-imp-%`],
          )) === 0,
        3600_000,
      );
      done.import = performance.now() - t0;
    })();
    const fanJob = (async () => {
      const { data } = await opsflow.POST('/v1/events', { body: { type: fanType, payload: {} } });
      if (!data || data.deliveries.length !== FANOUT) throw new Error('fan-out refused or short');
      await until(
        'the fan-out delivered',
        async () =>
          (await count(
            `SELECT count(*) AS n FROM opsflow.webhook_deliveries WHERE event_id = $1 AND status <> 'delivered'`,
            [data.eventId],
          )) === 0,
        3600_000,
      );
      done.fanout = performance.now() - t0;
    })();
    const redriveJob = (async () => {
      // As an operator would: 1,000 a call (the most one takes) until none is open; a restart Temporal refused is
      // reopened by the API and taken by a later call.
      for (let open = REDRIVE; open > 0;) {
        const { data } = await opsflow.POST('/v1/dead-letters/redrive', { body: { endpointId: sinkId, limit: 1000 } });
        if (!data) throw new Error('redrive refused');
        redriveRefused += data.failed;
        open = await count(
          `SELECT count(*) AS n FROM opsflow.dead_letters WHERE endpoint_id = $1 AND resolved_at IS NULL`,
          [sinkId],
        );
      }
      await until(
        'the redrive delivered',
        async () =>
          (await count(
            `SELECT count(*) AS n FROM opsflow.webhook_deliveries WHERE endpoint_id = $1 AND status <> 'delivered'`,
            [sinkId],
          )) === 0,
        3600_000,
      );
      done.redrive = performance.now() - t0;
    })();
    let bulkDone = false;
    const jobs = Promise.all([importJob, fanJob, redriveJob]).finally(() => (bulkDone = true));
    const windowEnd = performance.now() + WINDOW_MS;
    const busy = await lanes(() => bulkDone || performance.now() > windowEnd);
    await jobs;

    const cell = (k: Kind) => {
      const refused = (f: number[]) => (f.length > 0 ? ` (${f.length} refused: ${[...new Set(f)].join(', ')})` : '');
      return `${ms(pct(quiet.times[k], 50))} / ${ms(pct(quiet.times[k], 99))}${refused(quiet.failed[k])} · ${ms(pct(busy.times[k], 50))} / ${ms(pct(busy.times[k], 99))}${refused(busy.failed[k])}`;
    };
    const requests = busy.times.change.length + busy.times.create.length + busy.times.publish.length;
    const row = `| ${priority}${priority === 3 ? ' (bulk at the default)' : ''} | ${pace} | ${cell('change')} | ${cell('create')} | ${cell('publish')} | ${requests} | ${s(done.import)} | ${s(done.fanout)} | ${s(done.redrive)}${redriveRefused > 0 ? ` (${redriveRefused} restarts refused, redriven again)` : ''} |`;
    rows.push(row);
    process.stdout.write(`${row}\n`);
    void ping;

    worker.kill('SIGTERM');
    await new Promise((res) => worker.once('exit', res));
    api.close();
  }

  const lines = [
    '## Interactive work beside bulk work (`npm run bench:interactive`)',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}; Temporal dev server (SQLite in memory), one worker process with every family, the API in the bench process, PostgreSQL 15, a loopback receiver.`,
    `Bulk: a ${IMPORT.toLocaleString('en')}-subscription import, one event to ${FANOUT.toLocaleString('en')} endpoints and a redrive of ${REDRIVE.toLocaleString('en')} dead letters, started together (WORKFLOW_START_CONCURRENCY ${loadConfig(baseEnv).startConcurrency}).`,
    `Interactive: ${LANES} requests in flight, p50 / p99 with nothing else running · while the bulk jobs ran (until all three were done, or for ${WINDOW_MS / 1000} s at most).`,
    '',
    '| BULK_TASK_PRIORITY | BULK_START_CONCURRENCY | PUT changing a live subscription | PUT creating one | POST /v1/events (one endpoint) | requests during the bulk | import: every workflow started | fan-out: all delivered | redrive: all delivered |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
  await writeResultsSection('## Interactive work beside bulk work', lines);

  await stack.close();
}

main().catch((err: unknown) => {
  console.error(err);
  // A failed round leaves no worker behind (it would poll a dead server forever).
  for (const w of workers) w.kill('SIGKILL');
  process.exit(1);
});
