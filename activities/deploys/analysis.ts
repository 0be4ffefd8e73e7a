/**
 * One measurement of a deploy target's metric: its PromQL instant query sent to PROMETHEUS_URL (with
 * PROMETHEUS_BEARER_TOKEN), its single value judged against the metric's success condition. Prometheus answering
 * an error, nothing, several series or not at all is an inconclusive measurement, never a thrown error: the gate
 * counts it against the metric's inconclusive limit.
 */
import { judge, valueOf } from '../../lib/deploys/analysis.js';
import type { HealthSample } from '../../lib/deploys/contract.js';
import type { DeployTarget } from '../../lib/deploys/targets.js';
import type { Config } from '../../lib/config.js';

const QUERY_TIMEOUT_MS = 10_000;

/** The query with `${VERSION}` standing for the version being deployed (as the inside of a PromQL string). */
export const queryFor = (query: string, version: string) =>
  query.replaceAll('${VERSION}', version.replace(/\\/g, '\\\\').replace(/"/g, '\\"'));

export async function measureMetric(
  config: Config,
  target: DeployTarget,
  metricName: string,
  version: string,
): Promise<HealthSample> {
  const metric = target.analysis?.metrics.find((m) => m.name === metricName);
  const at = new Date();
  const sample: HealthSample = {
    phase: 'analysis',
    at: at.toISOString(),
    ok: false,
    status: null,
    latencyMs: 0,
    versionSeen: null,
    metric: metricName,
    value: null,
    measurement: 'inconclusive',
  };
  const prometheus = config.deploys.prometheus;
  if (!metric || !prometheus) {
    sample.error = !metric ? `${target.name} declares no metric ${metricName}` : 'PROMETHEUS_URL is not set';
    return sample;
  }
  const t0 = performance.now();
  try {
    const url = new URL('api/v1/query', prometheus.url.endsWith('/') ? prometheus.url : `${prometheus.url}/`);
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(prometheus.bearerToken ? { authorization: `Bearer ${prometheus.bearerToken}` } : {}),
      },
      body: new URLSearchParams({ query: queryFor(metric.query, version), time: String(at.getTime() / 1000) }),
      signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
      redirect: 'manual',
    });
    sample.status = res.status;
    const body = (await res.json().catch(() => null)) as { status?: string; data?: unknown; error?: string } | null;
    if (!res.ok || body?.status !== 'success') {
      sample.error = `Prometheus answered ${res.status}${body?.error ? `: ${body.error}` : ''}`.slice(0, 500);
    } else {
      const v = valueOf(body.data);
      if ('error' in v) sample.error = v.error;
      else sample.value = v.value;
    }
  } catch (err) {
    sample.error =
      (err as Error).name === 'TimeoutError'
        ? `Prometheus did not answer within ${QUERY_TIMEOUT_MS} ms`
        : `Prometheus unreachable: ${(err as Error).message}`;
  }
  sample.latencyMs = Math.round(performance.now() - t0);
  sample.measurement = sample.error ? 'inconclusive' : judge(sample.value ?? null, metric.successCondition);
  sample.ok = sample.measurement === 'success';
  if (sample.measurement === 'failure') sample.error = `${sample.value} does not meet ${metric.successCondition}`;
  return sample;
}
