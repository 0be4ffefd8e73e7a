/**
 * The deploy's metric analysis (lib/deploys/analysis.ts), after the health gate passed: each metric of the target
 * measured every `intervalSec` until `count` measurements, each kept with the health samples (phase `analysis`).
 * A metric past its failure limit fails the gate; past its inconclusive limit it fails it too, or — with
 * `onInconclusive: "pause"` — the run waits for an approver: approve goes on, reject (or no decision in the
 * target's approval timeout) fails it. Workflow code: deterministic, its clock is the workflow's.
 */
import { condition, proxyActivities, setCurrentDetails, sleep } from '@temporalio/workflow';
import type { createDeployActivities } from '../../activities/deploys/index.js';
import { countMeasurement } from '../../lib/deploys/analysis.js';
import { keepSample } from '../../lib/deploys/plan.js';
import { mark, setStatus, type Run } from './run.js';

type Activities = ReturnType<typeof createDeployActivities>;

// A measurement on a dead worker is retried elsewhere; Prometheus' own trouble is an inconclusive answer, not a retry.
const { analysisSample } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
});

export type GateOutcome = { ok: boolean; reason?: string };

export async function analysisGate(
  run: Run,
  version: string,
  record: (run: Run) => Promise<void>,
): Promise<GateOutcome> {
  const analysis = run.t!.analysis!;
  mark(run, 'analysis', analysis.metrics.map((m) => m.name).join(', '));
  if (analysis.initialDelaySec > 0) await sleep(analysis.initialDelaySec * 1000);
  const state = analysis.metrics.map((metric) => ({
    metric,
    counters: { taken: 0, failures: 0, inconclusive: 0 },
    nextAt: Date.now(),
    done: false,
  }));
  for (;;) {
    for (const s of state.filter((x) => !x.done && x.nextAt <= Date.now())) {
      const { metric } = s;
      s.nextAt += metric.intervalSec * 1000;
      const sample = await analysisSample({ target: run.name, metric: metric.name, version });
      keepSample(run.result, sample);
      const step = countMeasurement(s.counters, sample.measurement ?? 'inconclusive', metric);
      s.counters = step.counters;
      const { taken, failures, inconclusive } = s.counters;
      setCurrentDetails(
        `analysis of ${version}: ${metric.name} = ${sample.value ?? '—'} (${sample.measurement}); ${taken}/${metric.count} taken, ${failures} failed, ${inconclusive} inconclusive`,
      );
      const last = sample.error ?? `${sample.value}`;
      if (step.verdict === 'failed') {
        return {
          ok: false,
          reason: `analysis: ${metric.name} failed ${failures} of ${taken} measurements (failureLimit ${metric.failureLimit}; last: ${last})`,
        };
      }
      if (step.verdict === 'inconclusive') {
        const why = `analysis: ${metric.name} inconclusive ${inconclusive} of ${taken} measurements (inconclusiveLimit ${metric.inconclusiveLimit}; last: ${last})`;
        return analysis.onInconclusive === 'pause' ? decide(run, why, record) : { ok: false, reason: why };
      }
      if (step.verdict === 'passed') s.done = true;
    }
    const pending = state.filter((x) => !x.done);
    if (pending.length === 0) return { ok: true };
    const wait = Math.min(...pending.map((x) => x.nextAt)) - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

/** An inconclusive analysis on a target that pauses: an approver's decision, through the approve/reject updates. */
async function decide(run: Run, why: string, record: (run: Run) => Promise<void>): Promise<GateOutcome> {
  const timeoutSec = run.t!.approvalTimeoutSec;
  run.decision = undefined;
  setStatus(run, 'awaiting_approval');
  mark(run, 'analysis-decision', `${why}: approve to go on, reject to roll back`);
  await record(run);
  const decided = await condition(() => run.decision !== undefined, timeoutSec * 1000);
  setStatus(run, 'running');
  if (!decided) return { ok: false, reason: `${why}; no decision within ${timeoutSec} s` };
  const d = run.decision!;
  mark(
    run,
    'analysis-decision',
    `${d.approved ? 'approved' : 'rejected'} by ${d.by}${d.reason ? `: ${d.reason}` : ''}`,
  );
  await record(run);
  return d.approved
    ? { ok: true }
    : { ok: false, reason: `${why}; rejected by ${d.by}${d.reason ? `: ${d.reason}` : ''}` };
}
