/**
 * Metric analysis in the deploy gate: a target's Prometheus queries, measured after its health gate, each judged
 * against its success condition with failure and inconclusive limits. The judgement is checked pure; the rest end
 * to end against a real Prometheus server scraping the real test service (whose failing traffic its version sets:
 * `*errors*` fails 30 % of it), real Temporal and real PostgreSQL: a good version passes, one that raises the error
 * ratio rolls back, a Prometheus outage is inconclusive — rolled back, or held for an approver's decision.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryFor } from '../../activities/deploys/analysis.js';
import { countMeasurement, judge, valueOf } from '../../lib/deploys/analysis.js';
import { parseDeployTargets } from '../../lib/deploys/targets.js';
import { loadConfig } from '../../lib/config.js';
import { deployWorkflowId } from '../../lib/deploys/contract.js';
import { saveHistory } from '../helpers/histories.js';
import { freePort } from '../global-setup.js';
import { apiCaller, authHeaders, consoleHtml } from '../helpers/api.js';
import { serviceTarget, stopServices } from '../helpers/deploy-service.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

describe('analysis judgement (pure)', () => {
  it('judges a value against its condition; no value is inconclusive', () => {
    expect(judge(0.01, '< 0.05')).toBe('success');
    expect(judge(0.05, '< 0.05')).toBe('failure');
    expect(judge(0.05, '<=0.05')).toBe('success');
    expect(judge(0.99, '>= 0.99')).toBe('success');
    expect(judge(1, '> 1')).toBe('failure');
    expect(judge(0, '== 0')).toBe('success');
    expect(judge(0, '!= 0')).toBe('failure');
    expect(judge(1e-4, '< 1e-3')).toBe('success');
    expect(judge(null, '< 0.05')).toBe('inconclusive');
    expect(judge(Number.NaN, '< 0.05')).toBe('inconclusive');
  });

  it('counts measurements: past the failure limit fails, past the inconclusive limit is inconclusive, count passes', () => {
    const metric = { count: 3, failureLimit: 1, inconclusiveLimit: 0 };
    let c = { taken: 0, failures: 0, inconclusive: 0 };
    const steps = (['success', 'failure', 'success'] as const).map((m) => {
      const s = countMeasurement(c, m, metric);
      c = s.counters;
      return s.verdict;
    });
    expect(steps).toEqual(['running', 'running', 'passed']);
    const two = countMeasurement({ taken: 1, failures: 1, inconclusive: 0 }, 'failure', metric);
    expect(two).toEqual({ counters: { taken: 2, failures: 2, inconclusive: 0 }, verdict: 'failed' });
    expect(countMeasurement({ taken: 0, failures: 0, inconclusive: 0 }, 'inconclusive', metric).verdict).toBe(
      'inconclusive',
    );
    // Inconclusive measurements within their limit never count towards passing.
    const lenient = { count: 2, failureLimit: 0, inconclusiveLimit: 5 };
    expect(countMeasurement({ taken: 2, failures: 0, inconclusive: 1 }, 'inconclusive', lenient).verdict).toBe(
      'running',
    );
    expect(countMeasurement({ taken: 3, failures: 0, inconclusive: 2 }, 'success', lenient).verdict).toBe('passed');
  });

  it("reads one value from Prometheus' answer; anything else says why there is none", () => {
    expect(valueOf({ resultType: 'scalar', result: [1, '0.25'] })).toEqual({ value: 0.25 });
    expect(valueOf({ resultType: 'vector', result: [{ metric: {}, value: [1, '3'] }] })).toEqual({ value: 3 });
    expect(valueOf({ resultType: 'vector', result: [] })).toEqual({ error: 'empty result' });
    expect(valueOf({ resultType: 'vector', result: [{ value: [1, '1'] }, { value: [1, '2'] }] })).toEqual({
      error: '2 series; the query must return one',
    });
    expect(valueOf({ resultType: 'vector', result: [{ value: [1, 'NaN'] }] })).toEqual({ error: 'not a number: NaN' });
    expect(valueOf({ resultType: 'matrix', result: [] })).toEqual({ error: 'unexpected result type matrix' });
  });

  it('puts the version into the query as the inside of a PromQL string', () => {
    expect(queryFor('x{version="${VERSION}"} + y{v="${VERSION}"}', '1.2.3')).toBe('x{version="1.2.3"} + y{v="1.2.3"}');
    expect(queryFor('x{version="${VERSION}"}', 'a"b\\c')).toBe('x{version="a\\"b\\\\c"}');
  });

  it('refuses a bad analysis in the targets file, naming the field; PROMETHEUS_URL must be set for one', async () => {
    const target = (analysis: unknown) => [{ ...serviceTarget('/tmp', 'web', 1), environment: 'staging', analysis }];
    const metric = { name: 'errors', query: 'up', successCondition: '< 0.05' };
    expect(() => parseDeployTargets(target({ metrics: [{ ...metric, successCondition: 'small' }] }), [])).toThrow(
      /web\.analysis\.metrics\.0\.successCondition: an operator and a number/,
    );
    expect(() => parseDeployTargets(target({ metrics: [metric, metric] }), [])).toThrow(/metric names must differ/);
    expect(() => parseDeployTargets(target({ metrics: [] }), [])).toThrow(/web\.analysis\.metrics/);
    expect(() => parseDeployTargets(target({ metrics: [metric], onInconclusive: 'ignore' }), [])).toThrow(
      /onInconclusive/,
    );
    const parsed = parseDeployTargets(target({ metrics: [metric] }), []);
    expect(parsed[0]!.analysis).toEqual({
      metrics: [{ ...metric, intervalSec: 30, count: 5, failureLimit: 0, inconclusiveLimit: 0 }],
      initialDelaySec: 0,
      onInconclusive: 'rollback',
    });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-analysis-cfg-'));
    const file = path.join(dir, 'targets.json');
    await writeFile(file, JSON.stringify(target({ metrics: [metric] })));
    const base = { OPSFLOW_API_KEYS: 'analysis-config-key-0123456789abcdef', DEPLOY_TARGETS_FILE: file };
    expect(() => loadConfig(base)).toThrow(/PROMETHEUS_URL: deploy targets web hold analysis queries/);
    expect(loadConfig({ ...base, PROMETHEUS_URL: 'http://prom:9090' }).deploys.prometheus).toEqual({
      url: 'http://prom:9090',
      bearerToken: undefined,
    });
    await rm(dir, { recursive: true, force: true });
  });
});

const METRIC = `metric-${process.pid}`;
const PAUSED = `paused-${process.pid}`;
const errorRatio = {
  name: 'error-ratio',
  query:
    'sum(rate(app_requests_total{version="${VERSION}",code="500"}[5s])) / sum(rate(app_requests_total{version="${VERSION}"}[5s]))',
  successCondition: '< 0.05',
  intervalSec: 1,
  count: 3,
  failureLimit: 0,
};

describe('metric analysis (real Prometheus, real deploys)', () => {
  let dir: string;
  let prometheus: PrometheusServer;
  let live: Harness;
  let outage: Harness;
  const workers: TestWorkers[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-analysis-'));
    const [metricPort, pausedPort] = [await freePort(), await freePort()];
    prometheus = await startPrometheus([`127.0.0.1:${metricPort}`, `127.0.0.1:${pausedPort}`]);
    const file = path.join(dir, 'targets.json');
    await writeFile(
      file,
      JSON.stringify([
        // The rate() window needs two scrapes of the new version: the first measurement waits 3 s for them.
        serviceTarget(dir, METRIC, metricPort, {
          watchWindowSec: 0,
          analysis: { metrics: [{ ...errorRatio, inconclusiveLimit: 4 }], initialDelaySec: 3 },
        }),
        serviceTarget(dir, PAUSED, pausedPort, {
          watchWindowSec: 0,
          allowSelfApproval: true,
          analysis: { metrics: [{ ...errorRatio, inconclusiveLimit: 1 }], initialDelaySec: 3, onInconclusive: 'pause' },
        }),
      ]),
    );
    live = await createHarness({ DEPLOY_TARGETS_FILE: file, PROMETHEUS_URL: prometheus.url });
    // The same targets, their Prometheus down: a port nothing listens on.
    outage = await createHarness({
      DEPLOY_TARGETS_FILE: file,
      PROMETHEUS_URL: `http://127.0.0.1:${await freePort()}`,
    });
    for (const h of [live, outage]) workers.push(await startWorkers(h, ['deploys']));
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    for (const h of [live, outage]) await h?.close();
    await prometheus?.close();
    await stopServices(dir, [METRIC, PAUSED]);
    await rm(dir, { recursive: true, force: true });
  });

  type Sample = { phase: string; metric?: string; value?: number | null; measurement?: string; error?: string };
  type Deploy = { status: string; reason: string | null; samples: Sample[]; timeline: { step: string }[] };
  const deploy = async (h: Harness, target: string, version: string) => {
    const api = apiCaller(() => testApp(h));
    const started = await api<{ id: string }>('POST', '/v1/deploys', { target, version });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    return started.body.id;
  };
  const settled = (h: Harness, id: string, statuses: string[]) =>
    waitFor(
      async () => (await apiCaller(() => testApp(h))<Deploy>('GET', `/v1/deploys/${encodeURIComponent(id)}`)).body,
      (d) => statuses.includes(d.status),
      90_000,
      250,
    );
  const analysisOf = (d: Deploy) => d.samples.filter((s) => s.phase === 'analysis');

  it('a good version passes its analysis; one that raises the error ratio rolls back', async () => {
    const good = await settled(live, await deploy(live, METRIC, '1.0.0'), ['succeeded', 'rolled_back', 'failed']);
    expect(good.status, `${good.reason ?? ''} ${JSON.stringify(analysisOf(good))}`).toBe('succeeded');
    const measured = analysisOf(good).filter((s) => s.measurement === 'success');
    expect(measured).toHaveLength(3);
    expect(measured.every((s) => s.metric === 'error-ratio' && s.value === 0)).toBe(true);
    expect(good.timeline.map((t) => t.step)).toEqual(expect.arrayContaining(['health-gate', 'analysis']));

    const bad = await settled(live, await deploy(live, METRIC, '1.1.0-errors'), ['succeeded', 'rolled_back', 'failed']);
    expect(bad.status).toBe('rolled_back');
    expect(bad.reason).toMatch(
      /^analysis: error-ratio failed 1 of \d+ measurements \(failureLimit 0; last: 0\.3\d* does not meet < 0\.05\)/,
    );
    await saveHistory(deployWorkflowId(METRIC), 'deploys/analysis-rolled-back.json');
    const failed = analysisOf(bad).find((s) => s.measurement === 'failure');
    expect(failed?.value).toBeCloseTo(0.3, 2);
    // Back on the good version, which is what the service runs.
    expect(bad.timeline.map((t) => t.step)).toEqual(expect.arrayContaining(['analysis', 'rollback']));
    const health = await fetch(`http://127.0.0.1:${new URL(live.config.deploys.targets[0]!.health.url).port}/health`);
    expect(((await health.json()) as { version: string }).version).toBe('1.0.0');
    // The console plots the measurements beside the health samples.
    const page = await consoleHtml(testApp(live), '/console/deploys');
    expect(page).toContain(`data-plot="analysis-${METRIC}"`);
    expect(page).toContain(`data-plot="samples-${METRIC}"`);
  });

  it('a Prometheus outage is inconclusive: at the limit the deploy rolls back, naming it', async () => {
    const d = await settled(outage, await deploy(outage, METRIC, '1.2.0'), ['succeeded', 'rolled_back', 'failed']);
    expect(d.status).toBe('rolled_back');
    expect(d.reason).toMatch(
      /^analysis: error-ratio inconclusive 5 of 5 measurements \(inconclusiveLimit 4; last: Prometheus unreachable/,
    );
    expect(analysisOf(d).every((s) => s.measurement === 'inconclusive' && s.value === null)).toBe(true);
  });

  it('a target that pauses waits for an approver: approve goes on, reject rolls back', async () => {
    // Its first version, measured by the live Prometheus (nothing to roll back to otherwise).
    const first = await settled(live, await deploy(live, PAUSED, '2.0.0'), [
      'succeeded',
      'rolled_back',
      'failed',
      'awaiting_approval',
    ]);
    if (first.status === 'awaiting_approval')
      throw new Error(`the live analysis was inconclusive: ${JSON.stringify(first.samples)}`);
    expect(first.status, first.reason ?? '').toBe('succeeded');

    const approve = await deploy(outage, PAUSED, '2.1.0');
    const held = await settled(outage, approve, ['awaiting_approval', 'succeeded', 'rolled_back', 'failed']);
    expect(held.status).toBe('awaiting_approval');
    expect(held.timeline.map((t) => t.step)).toContain('analysis-decision');
    const ok = await testApp(outage).request(`/v1/deploys/${encodeURIComponent(approve)}/approve`, {
      method: 'POST',
      headers: authHeaders(),
      body: JSON.stringify({ comment: 'Prometheus is down for maintenance; the health gate passed' }),
    });
    expect(ok.status, await ok.clone().text()).toBe(200);
    const approved = await settled(outage, approve, ['succeeded', 'rolled_back', 'failed']);
    expect(approved.status, approved.reason ?? '').toBe('succeeded');
    await saveHistory(deployWorkflowId(PAUSED), 'deploys/analysis-paused-approved.json');

    const reject = await deploy(outage, PAUSED, '2.2.0');
    await settled(outage, reject, ['awaiting_approval']);
    const no = await testApp(outage).request(`/v1/deploys/${encodeURIComponent(reject)}/reject`, {
      method: 'POST',
      headers: authHeaders(),
      body: JSON.stringify({ reason: 'no metrics, no deploy' }),
    });
    expect(no.status, await no.clone().text()).toBe(200);
    const rejected = await settled(outage, reject, ['succeeded', 'rolled_back', 'failed']);
    expect(rejected.status).toBe('rolled_back');
    expect(rejected.reason).toMatch(/inconclusive 2 of 2 measurements .*; rejected by .*: no metrics, no deploy$/);
  });
});
