/**
 * bench:paths' measurement: rows run in interleaved rounds (each round starting one row later), with time, CPU,
 * server RPCs and sampled history costs per workflow; the RPC breakdown printed under its table; the report.
 */
import os from 'node:os';
import type { WorkflowHandle } from '@temporalio/client';
import { historyCost } from '../lib/history-cost.js';
import { TEMPORAL_SERVER_VERSION } from '../scripts/cluster.js';
import { pct } from './common.js';

export interface Row {
  name: string;
  perSecond: number;
  /** The lowest and highest workflows/s of its rounds. */
  roundRange?: [number, number];
  /** Server RPCs per workflow by operation (dev server only). */
  rpcs?: Map<string, number>;
  events: number;
  workflowTasks: number;
  activityTasks: number;
  cpuMs: { temporal: number; process: number; postgres: number };
}

export interface Spec {
  name: string;
  /** Starts one workflow (i < 0: a warm-up) and returns its handle once the workflow has closed. */
  op: (i: number) => Promise<WorkflowHandle>;
}

interface Cpu {
  temporal: number;
  process: number;
  postgres: number;
}

/**
 * A measurer: every spec in `rounds` rounds of n / rounds workflows, `inflight` at once. CPU seconds and server
 * RPC counts are read before and after each chunk.
 */
export function interleavedMeasurer(opts: {
  n: number;
  rounds: number;
  inflight: number;
  sample: number;
  cpuNow: () => Promise<Cpu>;
  rpcCounts: () => Promise<Map<string, number>>;
}): (specs: Spec[]) => Promise<Row[]> {
  const { n: N, rounds: ROUNDS, inflight: INFLIGHT, sample: SAMPLE, cpuNow, rpcCounts } = opts;
  interface Tally {
    seconds: number;
    done: number;
    perRound: number[];
    cpu: { temporal: number; process: number; postgres: number };
    /** Server RPCs answered during its chunks, by operation (dev server only). */
    rpcs: Map<string, number>;
    sample: WorkflowHandle[];
  }

  /** Runs ops [from, to) of a spec, INFLIGHT at once, adding time, CPU and sampled handles to its tally. */
  async function runChunk(spec: Spec, from: number, to: number, tally: Tally): Promise<void> {
    const rpc0 = await rpcCounts();
    const cpu0 = await cpuNow();
    const start = performance.now();
    let next = from;
    await Promise.all(
      Array.from({ length: INFLIGHT }, async () => {
        for (let i = next++; i < to; i = next++) {
          const handle = await spec.op(i);
          if (tally.sample.length < SAMPLE) tally.sample.push(handle);
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const cpu1 = await cpuNow();
    for (const [op, n] of await rpcCounts()) {
      const delta = n - (rpc0.get(op) ?? 0);
      if (delta > 0) tally.rpcs.set(op, (tally.rpcs.get(op) ?? 0) + delta);
    }
    tally.seconds += seconds;
    tally.done += to - from;
    tally.perRound.push((to - from) / seconds);
    tally.cpu.temporal += cpu1.temporal - cpu0.temporal;
    tally.cpu.process += cpu1.process - cpu0.process;
    tally.cpu.postgres += cpu1.postgres - cpu0.postgres;
  }

  /**
   * Every spec in ROUNDS rounds of N / ROUNDS workflows, each round starting one spec later: the server's state
   * grows through the run (the dev server keeps every history in memory, and a row measured after 10,000
   * others ran up to 2× slower than on a fresh server), so no path gets only the fresh or only the full server.
   */
  async function measureInterleaved(specs: Spec[]): Promise<Row[]> {
    for (const spec of specs) for (let i = 0; i < 20; i++) await spec.op(-1 - i); // warm-up
    const tallies = specs.map((): Tally => ({
      seconds: 0,
      done: 0,
      perRound: [],
      cpu: { temporal: 0, process: 0, postgres: 0 },
      rpcs: new Map(),
      sample: [],
    }));
    const per = Math.ceil(N / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < specs.length; k++) {
        const j = (k + round) % specs.length;
        const from = round * per;
        await runChunk(specs[j]!, from, Math.min(N, from + per), tallies[j]!);
      }
      process.stdout.write(`round ${round + 1}/${ROUNDS} done\n`);
    }
    return Promise.all(
      specs.map(async (spec, j) => {
        const t = tallies[j]!;
        const costs = await Promise.all(t.sample.map(async (h) => historyCost(await h.fetchHistory())));
        const mean = (f: (c: (typeof costs)[number]) => number) => costs.reduce((a, c) => a + f(c), 0) / costs.length;
        const row: Row = {
          name: spec.name,
          perSecond: t.done / t.seconds,
          roundRange: [Math.min(...t.perRound), Math.max(...t.perRound)],
          events: mean((c) => c.events),
          workflowTasks: mean((c) => c.workflowTasks),
          activityTasks: mean((c) => c.activityTasks),
          cpuMs: {
            temporal: (t.cpu.temporal * 1000) / t.done,
            process: (t.cpu.process * 1000) / t.done,
            postgres: (t.cpu.postgres * 1000) / t.done,
          },
          ...(t.rpcs.size > 0
            ? { rpcs: new Map([...t.rpcs].map(([op, n]) => [op, n / t.done] as [string, number])) }
            : {}),
        };
        process.stdout.write(
          `${row.name}: ${row.perSecond.toFixed(1)}/s, ${row.events.toFixed(1)} events, ${row.workflowTasks.toFixed(1)} WFT, ${row.activityTasks.toFixed(1)} AT, CPU-ms temporal ${row.cpuMs.temporal.toFixed(1)} process ${row.cpuMs.process.toFixed(1)} postgres ${row.cpuMs.postgres.toFixed(1)}\n`,
        );
        return row;
      }),
    );
  }

  return measureInterleaved;
}

export const totalRpcs = (r: Row) => [...(r.rpcs?.values() ?? [])].reduce((a, n) => a + n, 0);

/** The server's RPCs per workflow, by operation, for the fast path beside the searchable floor it is closest to. */
export function rpcBreakdown(rows: Row[]): string[] {
  const fast = rows.find((r) => r.name === 'fast delivery');
  const floor = rows.find((r) => r.name === 'floorSearchable + eager');
  if (!fast?.rpcs || !floor?.rpcs) return [];
  const ops = [...new Set([...fast.rpcs.keys(), ...floor.rpcs.keys()])]
    .map((op) => ({ op, fast: fast.rpcs!.get(op) ?? 0, floor: floor.rpcs!.get(op) ?? 0 }))
    .filter((o) => o.fast >= 0.05 || o.floor >= 0.05)
    .sort((x, y) => y.fast - y.floor - (x.fast - x.floor));
  return [
    'Server RPCs per workflow by operation (frontend, history and matching together), fast delivery / floorSearchable + eager:',
    ops.map((o) => `${o.op} ${o.fast.toFixed(2)} / ${o.floor.toFixed(2)}`).join('; ') + '.',
    '',
  ];
}

export interface PathsRun {
  temporal: 'dev' | 'cluster' | 'compose';
  n: number;
  rounds: number;
  inflight: number;
  rows: Row[];
  /** Result polls made before the delivery's workflow existed, by path. */
  earlyPolls: Map<string, number>;
  /** The fast path below capacity: accepted → received latencies (sorted), and how many never arrived. */
  low: { rate: number; seconds: number; latencies: number[]; lost: number };
  backlog: { events: number; publishSeconds: number; drainSeconds: number; rssBefore: number; peakRss: number };
}

/** bench:paths' section of RESULTS.md, its heading first. */
export function pathsReport(r: PathsRun): string[] {
  const floor = r.rows.find((row) => row.name === 'floorLocalActivity + eager');
  const ratio = (v: number, f: number | undefined) => (f ? `${(v / f).toFixed(2)}×` : '—');
  return [
    r.temporal === 'compose'
      ? '## Delivery cost on the compose stack (`BENCH_TEMPORAL=compose npm run bench:paths`)'
      : r.temporal === 'cluster'
        ? '## Delivery cost on Temporal-on-PostgreSQL (`BENCH_TEMPORAL=cluster npm run bench:paths`)'
        : '## Delivery cost against the floor (`npm run bench:paths`)',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version},`,
    r.temporal === 'compose'
      ? `the compose stack's Temporal server ${TEMPORAL_SERVER_VERSION} in its container on the stack's PostgreSQL container (both in the CPU columns; opsflow's own rows on this host's PostgreSQL), reached through the published 127.0.0.1:7233;`
      : r.temporal === 'cluster'
        ? `Temporal server ${TEMPORAL_SERVER_VERSION} on the same PostgreSQL (its persistence CPU is in the PostgreSQL column);`
        : 'Temporal dev server (SQLite, in memory);',
    `${r.n} workflows per row in ${r.rounds} interleaved rounds (each round starts one row later), ${r.inflight} in flight, each awaited to its close; worker, API and load in one process.`,
    'Events, tasks: means over 20 sampled histories. CPU-ms: per workflow, during the row. Ratios: to "floorLocalActivity + eager".',
    '',
    '| path | workflows/s | rounds | ratio | events | WFT | activity tasks | server RPCs | CPU-ms Temporal | CPU-ms worker+API | CPU-ms PostgreSQL |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...r.rows.map(
      (row) =>
        `| ${row.name} | ${row.perSecond.toFixed(1)} | ${row.roundRange ? `${row.roundRange[0].toFixed(1)}–${row.roundRange[1].toFixed(1)}` : '—'} | ${ratio(row.perSecond, floor?.perSecond)} | ${row.events.toFixed(1)} | ${row.workflowTasks.toFixed(1)} | ${row.activityTasks.toFixed(1)} | ${row.rpcs ? totalRpcs(row).toFixed(1) : '—'} | ${row.cpuMs.temporal.toFixed(1)} (${ratio(row.cpuMs.temporal, floor?.cpuMs.temporal)}) | ${row.cpuMs.process.toFixed(1)} | ${row.cpuMs.postgres.toFixed(1)} |`,
    ),
    '',
    ...rpcBreakdown(r.rows),
    ...(r.earlyPolls.size > 0
      ? [
          `Result polls made before the API had started the workflow (answered 202 within 0.8 s while the start went on; the load's, not the delivery's): ${[...r.earlyPolls].map(([p, n]) => `${p} ${(n / r.n).toFixed(2)}`).join(', ')} per delivery.`,
          '',
        ]
      : []),
    `Fast path at ${r.low.rate}/s for ${r.low.seconds} s (accepted → received): p50 ${pct(r.low.latencies, 50).toFixed(0)} ms, p99 ${pct(r.low.latencies, 99).toFixed(0)} ms, lost ${r.low.lost}.`,
    `Backlog: ${r.backlog.events} events accepted with no worker running (${r.backlog.publishSeconds.toFixed(1)} s, 50 publishers), then one worker started: drained in ${r.backlog.drainSeconds.toFixed(1)} s (${(r.backlog.events / r.backlog.drainSeconds).toFixed(1)}/s); this process's RSS ${r.backlog.rssBefore.toFixed(0)} MB before, ${r.backlog.peakRss.toFixed(0)} MB at its peak.`,
    '',
  ];
}
