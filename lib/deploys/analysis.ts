/**
 * Metric analysis in a deploy's gate, after Argo Rollouts' AnalysisTemplate: a target may hold Prometheus queries,
 * each measured `count` times every `intervalSec` once the health gate has passed. A measurement is a success when
 * the query's value meets the metric's `successCondition` (`< 0.05`, `>= 0.99`), a failure when it does not, and
 * *inconclusive* when Prometheus cannot say (an error, an empty result, NaN). A metric with more failures than its
 * `failureLimit` fails the analysis (the deploy rolls back); more inconclusive measurements than its
 * `inconclusiveLimit` stop it as `onInconclusive` says — roll back, or wait for a person's decision. Pure: the
 * workflow keeps the counters, an activity takes the measurements.
 */
import { z } from 'zod';

const CONDITION = /^\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$/i;

export const metricSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, - and _ (max 63)'),
    /**
     * PromQL, evaluated at the measurement's time; its single value (a scalar, or a one-sample vector) is judged.
     * `${VERSION}` stands for the version being deployed, e.g. `app_requests_total{version="${VERSION}"}`.
     */
    query: z.string().min(1).max(4000),
    successCondition: z.string().regex(CONDITION, 'an operator and a number, e.g. "< 0.05" or ">= 0.99"'),
    intervalSec: z.number().int().min(1).max(3600).default(30),
    count: z.number().int().min(1).max(200).default(5),
    failureLimit: z.number().int().min(0).max(200).default(0),
    inconclusiveLimit: z.number().int().min(0).max(200).default(0),
  })
  .strict();

export const analysisSchema = z
  .object({
    metrics: z.array(metricSchema).min(1).max(10),
    /** Seconds after the health gate before the first measurement (a rate() window needs the new version's data). */
    initialDelaySec: z.number().int().min(0).max(3600).default(0),
    /** At a metric's inconclusive limit: roll back, or wait for an approver to continue or reject (roll back). */
    onInconclusive: z.enum(['rollback', 'pause']).default('rollback'),
  })
  .strict()
  .refine((a) => new Set(a.metrics.map((m) => m.name)).size === a.metrics.length, {
    message: 'metric names must differ',
  });

export type AnalysisSettings = z.output<typeof analysisSchema>;
export type MetricSettings = AnalysisSettings['metrics'][number];

export type Measurement = 'success' | 'failure' | 'inconclusive';

/** How `value` measures against a condition such as `< 0.05`; null (no value) is inconclusive. */
export function judge(value: number | null, condition: string): Measurement {
  if (value === null || Number.isNaN(value)) return 'inconclusive';
  const [, op, raw] = CONDITION.exec(condition) ?? [];
  const bound = Number(raw);
  const met =
    op === '<'
      ? value < bound
      : op === '<='
        ? value <= bound
        : op === '>'
          ? value > bound
          : op === '>='
            ? value >= bound
            : op === '=='
              ? value === bound
              : value !== bound;
  return met ? 'success' : 'failure';
}

export interface MetricCounters {
  /** Measurements taken, inconclusive ones included. */
  taken: number;
  failures: number;
  inconclusive: number;
}

export type AnalysisVerdict = 'running' | 'passed' | 'failed' | 'inconclusive';

/**
 * A metric's standing after one more measurement: failed past its failure limit, inconclusive past its own, passed
 * once `count` measurements were conclusive — an inconclusive one never counts towards passing.
 */
export function countMeasurement(
  counters: MetricCounters,
  m: Measurement,
  metric: Pick<MetricSettings, 'count' | 'failureLimit' | 'inconclusiveLimit'>,
): { counters: MetricCounters; verdict: AnalysisVerdict } {
  const next = {
    taken: counters.taken + 1,
    failures: counters.failures + (m === 'failure' ? 1 : 0),
    inconclusive: counters.inconclusive + (m === 'inconclusive' ? 1 : 0),
  };
  const verdict: AnalysisVerdict =
    next.failures > metric.failureLimit
      ? 'failed'
      : next.inconclusive > metric.inconclusiveLimit
        ? 'inconclusive'
        : next.taken - next.inconclusive >= metric.count
          ? 'passed'
          : 'running';
  return { counters: next, verdict };
}

/**
 * The one value of a Prometheus instant query's `data` (`/api/v1/query`), or why there is none: a scalar, or a
 * vector of exactly one sample. Anything else (empty, several series, a matrix) is inconclusive.
 */
export function valueOf(data: unknown): { value: number } | { error: string } {
  const d = data as { resultType?: string; result?: unknown };
  if (d?.resultType === 'scalar' && Array.isArray(d.result)) return numberOf(d.result[1]);
  if (d?.resultType === 'vector' && Array.isArray(d.result)) {
    if (d.result.length === 0) return { error: 'empty result' };
    if (d.result.length > 1) return { error: `${d.result.length} series; the query must return one` };
    return numberOf((d.result[0] as { value?: unknown[] }).value?.[1]);
  }
  return { error: `unexpected result type ${String(d?.resultType)}` };
}

function numberOf(raw: unknown): { value: number } | { error: string } {
  const value = Number(raw);
  return typeof raw === 'string' && Number.isFinite(value) ? { value } : { error: `not a number: ${String(raw)}` };
}
