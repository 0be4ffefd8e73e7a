/**
 * `GET /metrics` (Prometheus text). HTTP metrics are observed by a middleware; the family metrics are read
 * at scrape time from PostgreSQL (the source of truth every worker writes) and from the Temporal schedules,
 * so every API replica reports the same numbers and nothing is lost when a process restarts.
 * Counts over the history tables come from `opsflow.metric_counts` (kept by triggers) and every other query
 * is served by an index over a bounded set of rows, so a scrape does not grow with the history.
 * Protected by METRICS_TOKEN (Bearer), separate from the API keys; required off loopback.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Config } from '../lib/config.js';
import type { Pool } from '../lib/db.js';
import type { TaskQueues } from '../lib/task-queues.js';
import { declareSchedules } from '../lib/schedules/declarations.js';
import { countByStatus, countExpiringWithin } from '../lib/subscriptions/overview.js';
import { errorResponse } from './errors.js';

export interface Metrics {
  registry: Registry;
  http: MiddlewareHandler;
  handler: MiddlewareHandler;
}

const q = async <R>(pool: Pool, sql: string, params: unknown[] = []) =>
  (await pool.query<R & Record<string, unknown>>(sql, params)).rows;

/**
 * Reads shared by the gauges of one scrape (they collect together): `scrape.next()` starts a new scrape,
 * and `scrape.once(read)` gives a function that reads at most once per scrape.
 */
function scrapeScope() {
  let generation = 0;
  return {
    next: () => void (generation += 1),
    once<T>(read: () => Promise<T>): () => Promise<T> {
      let cached: { generation: number; value: Promise<T> } | undefined;
      return () => {
        if (cached?.generation !== generation) cached = { generation, value: read() };
        return cached.value;
      };
    },
  };
}

export function createMetrics(deps: { config: Config; pool: Pool; temporal: Client; queues: TaskQueues }): Metrics {
  const registry = new Registry();
  const { pool } = deps;
  const scrape = scrapeScope();

  const requests = new Counter({
    name: 'opsflow_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'opsflow_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: (g: Gauge<L>) => Promise<void>,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        await collect(this);
      },
    });

  /** Sums of the trigger-maintained counts of one metric, by label. */
  const counts = (metric: string) =>
    q<{ label: string; n: string }>(
      pool,
      'SELECT label, sum(value) AS n FROM opsflow.metric_counts WHERE metric = $1 GROUP BY label',
      [metric],
    );

  gauge('opsflow_webhook_deliveries', 'Webhook deliveries by current status', ['status'], async (g) => {
    for (const r of await counts('webhook_deliveries')) g.set({ status: r.label }, Number(r.n));
  });
  gauge(
    'opsflow_webhook_attempts',
    'Webhook delivery attempts ever made, by outcome (success, retryable, permanent, gone); monotonic',
    ['outcome'],
    async (g) => {
      for (const o of ['success', 'retryable', 'permanent', 'gone']) g.set({ outcome: o }, 0);
      for (const r of await counts('webhook_attempts')) g.set({ outcome: r.label }, Number(r.n));
    },
  );
  gauge(
    'opsflow_webhook_attempt_latency_seconds',
    'Webhook attempt latency over the last hour (quantiles)',
    ['quantile'],
    async (g) => {
      const [r] = await q<{ p50: number | null; p99: number | null }>(
        pool,
        `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99
         FROM opsflow.webhook_attempts WHERE started_at > now() - interval '1 hour'`,
      );
      if (r?.p50 != null) g.set({ quantile: '0.5' }, r.p50 / 1000);
      if (r?.p99 != null) g.set({ quantile: '0.99' }, r.p99 / 1000);
    },
  );
  /** A gauge without labels whose value is `SELECT count(*) … WHERE <where>` at scrape time. */
  const countGauge = (name: string, help: string, from: string, where: string) =>
    gauge(name, help, [], async (g) => {
      const [r] = await q<{ n: string }>(pool, `SELECT count(*) AS n FROM ${from} WHERE ${where}`);
      g.set(Number(r?.n ?? 0));
    });

  countGauge('opsflow_webhook_dlq_depth', 'Unresolved dead letters', 'opsflow.dead_letters', 'resolved_at IS NULL');
  countGauge(
    'opsflow_webhook_deliveries_unstarted',
    'Accepted deliveries older than a minute whose workflow has not been started (Temporal refusing starts)',
    'opsflow.webhook_deliveries',
    `workflow_started_at IS NULL AND created_at < now() - interval '1 minute'`,
  );
  countGauge(
    'opsflow_webhook_endpoints_disabled',
    'Disabled webhook endpoints',
    'opsflow.webhook_endpoints',
    'disabled_at IS NOT NULL',
  );
  gauge('opsflow_subscriptions', 'Subscriptions by status', ['status'], async (g) => {
    for (const [status, n] of Object.entries(await countByStatus(pool))) g.set({ status }, n);
  });
  gauge('opsflow_subscriptions_expiring_24h', 'Active subscriptions expiring within 24 hours', [], async (g) =>
    g.set(await countExpiringWithin(pool, 24 * 3600_000)),
  );
  const databases = deps.config.backups.databases.map((d) => d.name);
  const lastVerified = scrape.once(() =>
    q<{ database: string; finished_at: Date; size_bytes: string; steps: Record<string, { ms: number }> }>(
      pool,
      // One index lookup per database (backups_verified), however many backups the catalogue holds.
      `SELECT b.* FROM unnest($1::text[]) AS d (name) CROSS JOIN LATERAL (
         SELECT database, finished_at, size_bytes, steps FROM opsflow.backups
         WHERE database = d.name AND status = 'verified' ORDER BY started_at DESC LIMIT 1) b`,
      [databases],
    ),
  );
  gauge(
    'opsflow_backup_last_verified_timestamp_seconds',
    'When the newest verified backup of each database finished (0: never)',
    ['database'],
    async (g) => {
      for (const d of databases) g.set({ database: d }, 0);
      for (const r of await lastVerified()) g.set({ database: r.database }, r.finished_at.getTime() / 1000);
    },
  );
  gauge('opsflow_backup_last_verified_size_bytes', 'Size of the newest verified backup', ['database'], async (g) => {
    for (const r of await lastVerified()) g.set({ database: r.database }, Number(r.size_bytes));
  });
  gauge(
    'opsflow_backup_last_step_duration_seconds',
    'Duration of the dump and verify steps of the newest verified backup',
    ['database', 'step'],
    async (g) => {
      for (const r of await lastVerified()) {
        for (const step of ['dump', 'verify']) {
          const ms = r.steps[step]?.ms;
          if (ms !== undefined) g.set({ database: r.database, step }, ms / 1000);
        }
      }
    },
  );
  gauge('opsflow_deploys', 'Finished deploys by target and outcome; monotonic', ['target', 'status'], async (g) => {
    for (const t of deps.config.deploys.targets) {
      for (const s of ['succeeded', 'rolled_back', 'failed']) g.set({ target: t.name, status: s }, 0);
    }
    for (const r of await q<{ target: string; status: string; n: string }>(
      pool,
      `SELECT target, status, count(*) AS n FROM opsflow.deploys WHERE finished_at IS NOT NULL GROUP BY target, status`,
    )) {
      g.set({ target: r.target, status: r.status }, Number(r.n));
    }
  });
  const schedules = scrape.once(() =>
    Promise.all(
      declareSchedules(deps.config, deps.queues).map(async (d) => {
        try {
          const s = await deps.temporal.schedule.getHandle(d.id).describe();
          const last = s.info.recentActions.at(-1)?.action.workflow;
          let failed = 0;
          if (last) {
            const st = await deps.temporal.workflow
              .getHandle(last.workflowId, last.firstExecutionRunId)
              .describe()
              .then((w) => w.status.name)
              .catch(() => 'UNKNOWN');
            failed = ['FAILED', 'TIMED_OUT', 'TERMINATED'].includes(st) ? 1 : 0;
          }
          return { id: d.id, skipped: s.info.numActionsSkippedOverlap, failed, paused: s.state.paused ? 1 : 0 };
        } catch {
          return undefined;
        }
      }),
    ),
  );
  gauge(
    'opsflow_schedule_runs_skipped',
    'Scheduled runs skipped because the previous one was still running (overlap SKIP); monotonic',
    ['schedule'],
    async (g) => {
      for (const s of await schedules()) if (s) g.set({ schedule: s.id }, s.skipped);
    },
  );
  gauge(
    'opsflow_schedule_last_run_failed',
    '1 when the last scheduled run failed or timed out',
    ['schedule'],
    async (g) => {
      for (const s of await schedules()) if (s) g.set({ schedule: s.id }, s.failed);
    },
  );
  gauge('opsflow_schedule_paused', '1 while a schedule is paused', ['schedule'], async (g) => {
    for (const s of await schedules()) if (s) g.set({ schedule: s.id }, s.paused);
  });

  const http: MiddlewareHandler = async (c, next) => {
    const t0 = performance.now();
    await next();
    // The route pattern, not the path: ids would make the label set unbounded.
    const handlers = matchedRoutes(c).filter((r) => r.method !== 'ALL');
    const route = handlers.at(-1)?.path ?? 'unmatched';
    requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    latency.observe({ method: c.req.method, route }, (performance.now() - t0) / 1000);
  };

  const token = deps.config.metricsToken;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const handler: MiddlewareHandler = async (c) => {
    if (token) {
      const presented = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
      if (!timingSafeEqual(digest(presented), digest(token))) {
        return errorResponse(c, 401, 'unauthorized', 'Missing or wrong metrics token (METRICS_TOKEN)');
      }
    }
    scrape.next();
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
  };
  return { registry, http, handler };
}
