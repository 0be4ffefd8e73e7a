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
import { backupStanding } from './backups/rows.js';
import { unfinishedDeploys } from './deploys/rows.js';
import { webhookTrouble } from './webhooks/endpoints.js';
import { hostOf } from './webhooks/urls.js';

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

/** What every part of the report shares: the bound on each call, and the lists it adds to. */
interface Reading {
  deps: StatusDeps;
  ms: number;
  now: Date;
  problems: string[];
  notices: string[];
}

/** A Temporal call with a gRPC deadline too, so the SDK stops retrying it when the bound passes. */
const temporalCall = <T>(r: Reading, fn: () => Promise<T>, bound = r.ms) =>
  bounded(r.deps.temporal.connection.withDeadline(Date.now() + bound, fn), bound, 'Temporal');

const postgresCall = <T>(r: Reading, p: Promise<T>) => bounded(p, r.ms, 'PostgreSQL');

/** Pollers on each family's workflow task queue: a family with none has no worker. */
async function readWorkers(r: Reading): Promise<StatusReport['workers']> {
  const workers: StatusReport['workers'] = {};
  const { deps } = r;
  await Promise.all(
    families.map(async (family) => {
      try {
        const answer = await temporalCall(r, () =>
          deps.temporal.connection.workflowService.describeTaskQueue({
            namespace: deps.config.temporal.namespace,
            taskQueue: { name: deps.queues[family] },
            taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
          }),
        );
        workers[family] = answer.pollers?.length ?? 0;
        if (workers[family] === 0) r.problems.push(`no ${family} worker is polling ${deps.queues[family]}`);
      } catch (err) {
        workers[family] = null;
        r.problems.push(`${family} workers unknown: ${message(err)}`);
      }
    }),
  );
  return workers;
}

/** Each declared schedule: applied or not, paused (a notice, with its note) or not. */
async function readSchedules(r: Reading): Promise<StatusReport['schedules']> {
  try {
    const schedules = await Promise.all(
      declareSchedules(r.deps.config, r.deps.queues).map(async (d) => {
        try {
          // A schedule's description comes from its scheduler workflow, busy for a few seconds after a worker
          // (re)applies the declarations: a longer bound than the rest.
          const bound = Math.max(r.ms, 10_000);
          const s = await temporalCall(r, () => r.deps.temporal.schedule.getHandle(d.id).describe(), bound);
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
      if (!s.applied) r.problems.push(`schedule ${s.id} is not applied (no worker has started since it was declared)`);
      else if (s.paused) r.notices.push(`schedule ${s.id} is paused${s.note ? `: ${s.note}` : ''}`);
    }
    return schedules;
  } catch (err) {
    r.problems.push(`schedules unknown: ${message(err)}`);
    return null;
  }
}

/** Each database's newest verified backup: none, or older than the freshness bound, is a problem. */
async function readBackups(r: Reading): Promise<StatusReport['backups']> {
  const maxAgeSeconds = DEFAULT_MAX_BACKUP_AGE_MS / 1000;
  try {
    const databases = r.deps.config.backups.databases.map((d) => d.name);
    const rows = await postgresCall(r, backupStanding(r.deps.pool, databases));
    return rows.map((row) => {
      const ageSeconds = row.verified_at
        ? Math.max(0, Math.round((r.now.getTime() - row.verified_at.getTime()) / 1000))
        : null;
      const stale = ageSeconds === null || ageSeconds > maxAgeSeconds;
      if (ageSeconds === null) r.problems.push(`${row.name} has no verified backup`);
      else if (stale) r.problems.push(`${row.name}'s newest verified backup is ${Math.round(ageSeconds / 3600)} h old`);
      return {
        database: row.name,
        lastVerifiedAt: row.verified_at?.toISOString() ?? null,
        ageSeconds,
        maxAgeSeconds,
        stale,
        lastBackup: row.last_id
          ? { id: row.last_id, status: row.last_status!, startedAt: row.last_started_at!.toISOString() }
          : null,
      };
    });
  } catch (err) {
    r.problems.push(`backups unknown: ${message(err)}`);
    return [];
  }
}

/** Open dead letters and failing or disabled endpoints: each a problem. */
async function readWebhooks(r: Reading): Promise<StatusReport['webhooks']> {
  try {
    const trouble = await postgresCall(r, webhookTrouble(r.deps.pool));
    const webhooks = {
      deadLetters: trouble.openDeadLetters,
      failingEndpoints: trouble.endpoints
        .filter((e) => !e.disabled_at && e.failing_since)
        .map((e) => ({ id: e.id, host: hostOf(e.url_origin), failingSince: e.failing_since!.toISOString() })),
      disabledEndpoints: trouble.endpoints
        .filter((e) => e.disabled_at)
        .map((e) => ({
          id: e.id,
          host: hostOf(e.url_origin),
          disabledAt: e.disabled_at!.toISOString(),
          reason: e.disabled_reason,
        })),
    };
    if (webhooks.deadLetters > 0) r.problems.push(`${webhooks.deadLetters} dead letter(s) waiting for redrive`);
    for (const e of webhooks.failingEndpoints) {
      r.problems.push(`endpoint ${e.id} (${e.host}) failing since ${e.failingSince}`);
    }
    for (const e of webhooks.disabledEndpoints) {
      r.problems.push(`endpoint ${e.id} (${e.host}) disabled${e.reason ? `: ${e.reason}` : ''}`);
    }
    return webhooks;
  } catch (err) {
    r.problems.push(`webhooks unknown: ${message(err)}`);
    return null;
  }
}

/** Deploys running or waiting for a decision: notices. */
async function readDeploys(r: Reading): Promise<StatusReport['deploys']> {
  try {
    const rows = await postgresCall(r, unfinishedDeploys(r.deps.pool));
    const deploys = rows.map((d) => ({
      id: d.id,
      target: d.target,
      status: d.status,
      version: d.version,
      startedAt: d.started_at.toISOString(),
    }));
    for (const d of deploys) {
      r.notices.push(
        d.status === 'awaiting_approval'
          ? `deploy ${d.id} (${d.version ?? '?'}) is waiting for approval`
          : `deploy ${d.id} (${d.version ?? '?'}) is ${d.status}`,
      );
    }
    return deploys;
  } catch (err) {
    r.problems.push(`deploys unknown: ${message(err)}`);
    return null;
  }
}

export async function collectStatus(deps: StatusDeps, opts: { timeoutMs?: number; now?: Date } = {}) {
  const r: Reading = { deps, ms: opts.timeoutMs ?? 3000, now: opts.now ?? new Date(), problems: [], notices: [] };
  const [postgres, temporalInfo] = await Promise.allSettled([
    postgresCall(r, deps.pool.query('SELECT 1')),
    temporalCall(r, () => deps.temporal.connection.workflowService.getSystemInfo({})),
  ]);
  const checks: StatusReport['checks'] = {
    postgres: postgres.status === 'fulfilled' ? { ok: true } : { ok: false, error: message(postgres.reason) },
    temporal: temporalInfo.status === 'fulfilled' ? { ok: true } : { ok: false, error: message(temporalInfo.reason) },
  };
  if (!checks.postgres.ok) r.problems.push(`PostgreSQL unreachable: ${checks.postgres.error}`);
  if (!checks.temporal.ok) r.problems.push(`Temporal unreachable: ${checks.temporal.error}`);

  // Temporal's parts, then PostgreSQL's, each in the order the report lists its problems.
  const workers = checks.temporal.ok
    ? await readWorkers(r)
    : Object.fromEntries(families.map((f) => [f, null] as [string, null]));
  const schedules = checks.temporal.ok ? await readSchedules(r) : null;
  const backups = checks.postgres.ok ? await readBackups(r) : [];
  const webhooks = checks.postgres.ok ? await readWebhooks(r) : null;
  const deploys = checks.postgres.ok ? await readDeploys(r) : null;

  const report: StatusReport = {
    ok: r.problems.length === 0,
    checkedAt: r.now.toISOString(),
    problems: r.problems,
    notices: r.notices,
    checks,
    workers,
    backups,
    webhooks,
    deploys,
    schedules,
  };
  return report;
}
