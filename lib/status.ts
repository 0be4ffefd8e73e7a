/**
 * Everything at a glance, as `health-check.sh` answered it: can opsflow reach PostgreSQL and Temporal, does
 * every family have a worker polling, is every database's newest verified backup fresh, is anything in the
 * dead-letter queue, are endpoints failing or disabled, which deploys are running or waiting, which schedules
 * are paused. `problems` lists what is wrong (the CLI's `status` exits 1 on any); `notices` what an operator
 * should know but is not a failure (a paused schedule has a note saying why; a deploy waiting for approval).
 *
 * Every part is bounded: one Temporal or PostgreSQL call that hangs costs at most `timeoutMs`, and a part
 * that cannot be read says so instead of failing the whole report.
 */
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { Config } from './config.js';
import type { Pool } from './db.js';
import type { TaskQueues } from './task-queues.js';
import { families } from './task-queues.js';
import { DEFAULT_MAX_BACKUP_AGE_MS } from './backups/contract.js';
import { declareSchedules } from './schedules/declarations.js';

export type Check = { ok: true } | { ok: false; error: string };

export interface StatusReport {
  ok: boolean;
  checkedAt: string;
  problems: string[];
  notices: string[];
  checks: { postgres: Check; temporal: Check };
  /** Pollers seen on each family's workflow task queue (null: not readable, Temporal is down). */
  workers: Record<string, number | null>;
  backups: {
    database: string;
    lastVerifiedAt: string | null;
    ageSeconds: number | null;
    maxAgeSeconds: number;
    stale: boolean;
    lastBackup: { id: string; status: string; startedAt: string } | null;
  }[];
  webhooks: {
    deadLetters: number;
    failingEndpoints: { id: string; host: string; failingSince: string }[];
    disabledEndpoints: { id: string; host: string; disabledAt: string; reason: string | null }[];
  } | null;
  deploys: { id: string; target: string; status: string; version: string | null; startedAt: string }[] | null;
  schedules: { id: string; paused: boolean; note: string | null; applied: boolean }[] | null;
}

export interface StatusDeps {
  config: Config;
  pool: Pool;
  temporal: Client;
  queues: TaskQueues;
}

async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
const hostOf = (url: string) => {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid url)';
  }
};

export async function collectStatus(deps: StatusDeps, opts: { timeoutMs?: number; now?: Date } = {}) {
  const ms = opts.timeoutMs ?? 3000;
  const now = opts.now ?? new Date();
  const problems: string[] = [];
  const notices: string[] = [];
  const sql = <R extends object>(text: string, values: unknown[] = []) =>
    bounded(
      deps.pool.query<R & Record<string, unknown>>(text, values).then((r) => r.rows as R[]),
      ms,
      'PostgreSQL',
    );

  /** A Temporal call with a gRPC deadline too, so the SDK stops retrying it when the bound passes. */
  const temporalCall = <T>(fn: () => Promise<T>, bound = ms) =>
    bounded(deps.temporal.connection.withDeadline(Date.now() + bound, fn), bound, 'Temporal');

  const [postgres, temporalInfo] = await Promise.allSettled([
    sql('SELECT 1'),
    temporalCall(() => deps.temporal.connection.workflowService.getSystemInfo({})),
  ]);
  const checks: StatusReport['checks'] = {
    postgres: postgres.status === 'fulfilled' ? { ok: true } : { ok: false, error: message(postgres.reason) },
    temporal: temporalInfo.status === 'fulfilled' ? { ok: true } : { ok: false, error: message(temporalInfo.reason) },
  };
  if (!checks.postgres.ok) problems.push(`PostgreSQL unreachable: ${checks.postgres.error}`);
  if (!checks.temporal.ok) problems.push(`Temporal unreachable: ${checks.temporal.error}`);

  // ---- Temporal: workers and schedules ----
  const workers: StatusReport['workers'] = {};
  let schedules: StatusReport['schedules'] = null;
  if (checks.temporal.ok) {
    const namespace = deps.config.temporal.namespace;
    await Promise.all(
      families.map(async (family) => {
        try {
          const r = await temporalCall(() =>
            deps.temporal.connection.workflowService.describeTaskQueue({
              namespace,
              taskQueue: { name: deps.queues[family] },
              taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            }),
          );
          workers[family] = r.pollers?.length ?? 0;
          if (workers[family] === 0) problems.push(`no ${family} worker is polling ${deps.queues[family]}`);
        } catch (err) {
          workers[family] = null;
          problems.push(`${family} workers unknown: ${message(err)}`);
        }
      }),
    );
    try {
      schedules = await Promise.all(
        declareSchedules(deps.config, deps.queues).map(async (d) => {
          try {
            // A schedule's description comes from its scheduler workflow, busy for a few seconds after a worker
            // (re)applies the declarations: a longer bound than the rest.
            const s = await temporalCall(() => deps.temporal.schedule.getHandle(d.id).describe(), Math.max(ms, 10_000));
            return { id: d.id, paused: s.state.paused, note: s.state.note || null, applied: true };
          } catch (err) {
            if ((err as Error).name === 'ScheduleNotFoundError') {
              return { id: d.id, paused: false, note: null, applied: false };
            }
            throw err;
          }
        }),
      );
      for (const s of schedules) {
        if (!s.applied) problems.push(`schedule ${s.id} is not applied (no worker has started since it was declared)`);
        else if (s.paused) notices.push(`schedule ${s.id} is paused${s.note ? `: ${s.note}` : ''}`);
      }
    } catch (err) {
      problems.push(`schedules unknown: ${message(err)}`);
    }
  } else {
    for (const f of families) workers[f] = null;
  }

  // ---- PostgreSQL: backups, webhooks, deploys ----
  const maxAgeSeconds = DEFAULT_MAX_BACKUP_AGE_MS / 1000;
  let backups: StatusReport['backups'] = [];
  let webhooks: StatusReport['webhooks'] = null;
  let deploys: StatusReport['deploys'] = null;
  if (checks.postgres.ok) {
    const databases = deps.config.backups.databases.map((d) => d.name);
    try {
      const rows = await sql<{
        name: string;
        verified_at: Date | null;
        last_id: string | null;
        last_status: string | null;
        last_started_at: Date | null;
      }>(
        // Two index lookups per database, however many backups the catalogue holds.
        `SELECT d.name, v.finished_at AS verified_at, l.id AS last_id, l.status AS last_status,
                l.started_at AS last_started_at
         FROM unnest($1::text[]) AS d (name)
         LEFT JOIN LATERAL (SELECT finished_at FROM opsflow.backups
                            WHERE database = d.name AND status = 'verified' ORDER BY started_at DESC LIMIT 1) v ON true
         LEFT JOIN LATERAL (SELECT id, status, started_at FROM opsflow.backups
                            WHERE database = d.name ORDER BY started_at DESC LIMIT 1) l ON true`,
        [databases],
      );
      backups = rows.map((r) => {
        const ageSeconds = r.verified_at
          ? Math.max(0, Math.round((now.getTime() - r.verified_at.getTime()) / 1000))
          : null;
        const stale = ageSeconds === null || ageSeconds > maxAgeSeconds;
        if (ageSeconds === null) problems.push(`${r.name} has no verified backup`);
        else if (stale) problems.push(`${r.name}'s newest verified backup is ${Math.round(ageSeconds / 3600)} h old`);
        return {
          database: r.name,
          lastVerifiedAt: r.verified_at?.toISOString() ?? null,
          ageSeconds,
          maxAgeSeconds,
          stale,
          lastBackup: r.last_id
            ? { id: r.last_id, status: r.last_status!, startedAt: r.last_started_at!.toISOString() }
            : null,
        };
      });
    } catch (err) {
      problems.push(`backups unknown: ${message(err)}`);
    }
    try {
      const [dlq] = await sql<{ n: string }>(
        'SELECT count(*) AS n FROM opsflow.dead_letters WHERE resolved_at IS NULL',
      );
      const endpoints = await sql<{
        id: string;
        url: string;
        failing_since: Date | null;
        disabled_at: Date | null;
        disabled_reason: string | null;
      }>(
        `SELECT id, url, failing_since, disabled_at, disabled_reason FROM opsflow.webhook_endpoints
         WHERE deleted_at IS NULL AND (failing_since IS NOT NULL OR disabled_at IS NOT NULL)
         ORDER BY coalesce(disabled_at, failing_since) LIMIT 100`,
      );
      webhooks = {
        deadLetters: Number(dlq?.n ?? 0),
        failingEndpoints: endpoints
          .filter((e) => !e.disabled_at && e.failing_since)
          .map((e) => ({ id: e.id, host: hostOf(e.url), failingSince: e.failing_since!.toISOString() })),
        disabledEndpoints: endpoints
          .filter((e) => e.disabled_at)
          .map((e) => ({
            id: e.id,
            host: hostOf(e.url),
            disabledAt: e.disabled_at!.toISOString(),
            reason: e.disabled_reason,
          })),
      };
      if (webhooks.deadLetters > 0) problems.push(`${webhooks.deadLetters} dead letter(s) waiting for redrive`);
      for (const e of webhooks.failingEndpoints) {
        problems.push(`endpoint ${e.id} (${e.host}) failing since ${e.failingSince}`);
      }
      for (const e of webhooks.disabledEndpoints) {
        problems.push(`endpoint ${e.id} (${e.host}) disabled${e.reason ? `: ${e.reason}` : ''}`);
      }
    } catch (err) {
      problems.push(`webhooks unknown: ${message(err)}`);
    }
    try {
      const rows = await sql<{ id: string; target: string; status: string; version: string | null; started_at: Date }>(
        `SELECT id, target, status, version, started_at FROM opsflow.deploys
         WHERE finished_at IS NULL ORDER BY started_at LIMIT 100`,
      );
      deploys = rows.map((r) => ({
        id: r.id,
        target: r.target,
        status: r.status,
        version: r.version,
        startedAt: r.started_at.toISOString(),
      }));
      for (const d of deploys) {
        notices.push(
          d.status === 'awaiting_approval'
            ? `deploy ${d.id} (${d.version ?? '?'}) is waiting for approval`
            : `deploy ${d.id} (${d.version ?? '?'}) is ${d.status}`,
        );
      }
    } catch (err) {
      problems.push(`deploys unknown: ${message(err)}`);
    }
  }

  const report: StatusReport = {
    ok: problems.length === 0,
    checkedAt: now.toISOString(),
    problems,
    notices,
    checks,
    workers,
    backups,
    webhooks,
    deploys,
    schedules,
  };
  return report;
}
