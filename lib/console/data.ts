/**
 * What the console's pages show, read from PostgreSQL by index or from the hourly attempt aggregates
 * (migration 017), so a page costs about the same with a thousand attempt rows or millions.
 */
import type { Pool } from '../db.js';

/** Lower bounds (ms) of the latency buckets after bucket 0 (< 1 ms): width_bucket's thresholds in 017. */
export const LATENCY_BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000];

/**
 * The q-quantile of a latency histogram (counts per bucket), interpolated inside its bucket as Prometheus'
 * histogram_quantile does; the open last bucket answers its lower bound. Undefined for an empty histogram.
 */
export function bucketQuantile(counts: readonly number[], q: number): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i] ?? 0;
    if (n > 0 && seen + n >= rank) {
      const lo = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
      const hi = LATENCY_BOUNDS_MS[i];
      if (hi === undefined) return lo;
      return lo + ((hi - lo) * (rank - seen)) / n;
    }
    seen += n;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
}

export type Range = '24h' | '7d';
export const RANGE_HOURS: Record<Range, number> = { '24h': 24, '7d': 168 };

export interface HourSeries {
  /** Start of each hour, unix seconds, oldest first (the last is the hour now under way). */
  hours: number[];
  attempts: Record<string, number[]>;
  latency: { p50: (number | null)[]; p95: (number | null)[]; p99: (number | null)[] };
  /** Deliveries that ended per hour: delivered (a delivery has one `success` attempt) and dead-lettered. */
  deliveries: { delivered: number[]; deadLettered: number[] };
  deadLetterDepth: number[];
}

const HOUR = 3600_000;

/** Attempts by outcome, latency quantiles and dead-letter depth per hour over the range. */
export async function webhookSeries(pool: Pool, range: Range, now = new Date()): Promise<HourSeries> {
  const n = RANGE_HOURS[range];
  const last = Math.floor(now.getTime() / HOUR) * HOUR;
  const first = last - (n - 1) * HOUR;
  const hours = Array.from({ length: n }, (_, i) => (first + i * HOUR) / 1000);
  const index = (d: Date) => Math.floor((d.getTime() - first) / HOUR);

  const [rollup, made, resolved, open] = await Promise.all([
    pool.query<{ hour: Date; outcome: string; bucket: number; n: string }>(
      `SELECT hour, outcome, bucket, sum(n) AS n FROM opsflow.webhook_attempt_hours
       WHERE hour >= $1 GROUP BY 1, 2, 3`,
      [new Date(first)],
    ),
    pool.query<{ hour: Date; n: string }>(
      `SELECT date_trunc('hour', created_at) AS hour, count(*) AS n FROM opsflow.dead_letters
       WHERE created_at >= $1 GROUP BY 1`,
      [new Date(first)],
    ),
    pool.query<{ hour: Date; n: string }>(
      `SELECT date_trunc('hour', resolved_at) AS hour, count(*) AS n FROM opsflow.dead_letters
       WHERE resolved_at >= $1 GROUP BY 1`,
      [new Date(first)],
    ),
    pool.query<{ n: string }>('SELECT count(*) AS n FROM opsflow.dead_letters WHERE resolved_at IS NULL'),
  ]);

  const attempts: Record<string, number[]> = {};
  const histograms = hours.map(() => new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0));
  for (const r of rollup.rows) {
    const i = index(r.hour);
    if (i < 0 || i >= n) continue;
    (attempts[r.outcome] ??= new Array<number>(n).fill(0))[i]! += Number(r.n);
    histograms[i]![r.bucket] = (histograms[i]![r.bucket] ?? 0) + Number(r.n);
  }
  const quantile = (q: number) => histograms.map((h) => round1(bucketQuantile(h, q)));

  // Depth at the end of each hour, walking back from the open count now: before an hour, a letter made in it
  // was not there yet and one resolved in it still was.
  const delta = new Array<number>(n).fill(0);
  const deadLettered = new Array<number>(n).fill(0);
  for (const r of made.rows) {
    if (index(r.hour) < 0) continue;
    delta[index(r.hour)]! += Number(r.n);
    deadLettered[index(r.hour)]! += Number(r.n);
  }
  for (const r of resolved.rows) if (index(r.hour) >= 0) delta[index(r.hour)]! -= Number(r.n);
  const deadLetterDepth = new Array<number>(n).fill(0);
  let depth = Number(open.rows[0]!.n);
  for (let i = n - 1; i >= 0; i--) {
    deadLetterDepth[i] = depth;
    depth -= delta[i]!;
  }

  return {
    hours,
    attempts,
    latency: { p50: quantile(0.5), p95: quantile(0.95), p99: quantile(0.99) },
    deliveries: { delivered: attempts.success ?? new Array<number>(n).fill(0), deadLettered },
    deadLetterDepth,
  };
}

const round1 = (x: number | undefined) => (x === undefined ? null : Math.round(x * 10) / 10);

export interface EndpointHealth {
  id: string;
  /** Scheme and host: the URL itself is stored encrypted, and its path may be a credential. */
  origin: string;
  description: string | null;
  format: string;
  enabled: boolean;
  disabledAt: Date | null;
  disabledReason: string | null;
  failingSince: Date | null;
  lastSuccessAt: Date | null;
  lastAnswer: { statusCode: number | null; error: string | null; at: Date } | null;
}

/** Endpoints, the disabled and failing first; each with the answer to its newest attempted delivery. */
interface EndpointHealthRow {
  id: string;
  url_origin: string;
  description: string | null;
  format: string;
  enabled: boolean;
  disabled_at: Date | null;
  disabled_reason: string | null;
  failing_since: Date | null;
  last_success_at: Date | null;
  status_code: number | null;
  error: string | null;
  started_at: Date | null;
}

export async function endpointHealth(pool: Pool, limit = 200): Promise<EndpointHealth[]> {
  const { rows } = await pool.query<EndpointHealthRow>(
    `SELECT e.id, e.url_origin, e.description, e.format, e.enabled, e.disabled_at, e.disabled_reason, e.failing_since,
            e.last_success_at, la.status_code, la.error, la.started_at
     FROM opsflow.webhook_endpoints e
     LEFT JOIN LATERAL (
       SELECT a.status_code, a.error, a.started_at
       FROM (SELECT id FROM opsflow.webhook_deliveries d WHERE d.endpoint_id = e.id AND d.attempts > 0
             ORDER BY d.created_at DESC LIMIT 1) d
       JOIN LATERAL (SELECT status_code, error, started_at FROM opsflow.webhook_attempts
                     WHERE delivery_id = d.id ORDER BY attempt_no DESC LIMIT 1) a ON true) la ON true
     WHERE e.deleted_at IS NULL
     ORDER BY e.enabled, e.failing_since NULLS LAST, e.created_at, e.id
     LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    id: r.id,
    origin: r.url_origin,
    description: r.description,
    format: r.format,
    enabled: r.enabled,
    disabledAt: r.disabled_at,
    disabledReason: r.disabled_reason,
    failingSince: r.failing_since,
    lastSuccessAt: r.last_success_at,
    lastAnswer: r.started_at ? { statusCode: r.status_code, error: r.error, at: r.started_at } : null,
  }));
}

/** Deliveries by their status now (the metric counters' triggers keep these). */
export async function deliveryTotals(pool: Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ label: string; n: string }>(
    `SELECT label, sum(value) AS n FROM opsflow.metric_counts WHERE metric = 'webhook_deliveries' GROUP BY label`,
  );
  return Object.fromEntries(rows.map((r) => [r.label, Number(r.n)]));
}
