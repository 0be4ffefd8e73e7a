/**
 * Deploy activities: plan (versions), run a target's command (a shell, killed with its process group on
 * cancellation or timeout), one health sample, the history row, and the report (email + `deploy.*` event).
 */
import { spawn } from 'node:child_process';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { Config } from '../../lib/config.js';
import type { Pool } from '../../lib/db.js';
import { lastOutcome, recordDeployRow, versionBefore, versionShipped } from '../../lib/deploys/rows.js';
import { targetSettings, targetsDigest, type DeployTarget } from '../../lib/deploys/targets.js';
import type { Logger } from '../../lib/logger.js';
import type { Mailer } from '../../lib/mailer.js';
import type { TaskQueues } from '../../lib/task-queues.js';
import { publishDeployOutcome, publishDeployProgress } from '../../lib/deploys/events.js';
import { webhookServiceDeps } from '../../lib/webhooks/service.js';
import type { CommandResult, DeployInput, DeployPlan, DeployResult, HealthSample } from '../../lib/deploys/contract.js';
import { bumpVersion, DEPLOY_VERSION, type Bump } from '../../lib/deploys/plan.js';
import { measureMetric } from './analysis.js';

interface Deps {
  config: Config;
  pool: Pool;
  mailer: Mailer;
  log: Logger;
  client: Client;
  queues: TaskQueues;
}

const planError = (message: string) =>
  ApplicationFailure.create({ type: 'DeployPlanError', message, nonRetryable: true });

const TAIL = 4096;

/**
 * The whole environment a target's command sees: PATH and HOME of the worker, the deploy's variables and the
 * target's declared `env` — not the worker's other variables (its database URL, keys and secrets).
 */
function commandEnv(t: DeployTarget, vars: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const k of ['PATH', 'HOME'] as const) if (process.env[k] !== undefined) base[k] = process.env[k];
  return { ...base, ...t.env, ...vars, TARGET: t.name };
}

/** Runs `/bin/sh -c command` in its own process group; kills the group on timeout or cancellation. */
async function shell(
  command: string,
  opts: { cwd?: string; env: Record<string, string>; timeoutMs: number; onBeat?: () => void; signal?: AbortSignal },
): Promise<CommandResult> {
  const t0 = Date.now();
  const child = spawn('/bin/sh', ['-c', command], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (b: Buffer) => (tail = (tail + b.toString()).slice(-TAIL));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let killedFor: string | null = null;
  const killGroup = (why: string) => {
    if (killedFor || child.exitCode !== null) return;
    killedFor = why;
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
    setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, 5000).unref();
  };
  const timer = setTimeout(() => killGroup('timeout'), opts.timeoutMs);
  const beat = opts.onBeat ? setInterval(opts.onBeat, 1000) : undefined;
  const onAbort = () => killGroup('canceled');
  opts.signal?.addEventListener('abort', onAbort);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      // 'exit', not 'close': a service started in the background may keep inherited pipes open.
      child.once('exit', (c, s) => resolve([c, s]));
    });
    await new Promise((r) => setTimeout(r, 50));
    return {
      exitCode: killedFor ? null : code,
      signal: killedFor ?? signal,
      durationMs: Date.now() - t0,
      outputTail: tail,
    };
  } finally {
    clearTimeout(timer);
    if (beat) clearInterval(beat);
    opts.signal?.removeEventListener('abort', onAbort);
    child.stdout.destroy();
    child.stderr.destroy();
  }
}

/** A dot path (`build.version`) into parsed JSON, as a string. */
function field(body: unknown, path: string): string | null {
  let v: unknown = body;
  for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  if (typeof v === 'string') return v;
  return v === undefined || v === null ? null : JSON.stringify(v);
}

export const createDeployActivities = (deps: Deps) => {
  const events = webhookServiceDeps(deps.config, deps.pool, deps.client, deps.queues);
  const targets = new Map(deps.config.deploys.targets.map((t) => [t.name, t]));
  const digest = targetsDigest(deps.config.deploys.targets);

  /** A target of this worker's DEPLOY_TARGETS_FILE, by name: whatever a workflow's input says, only these run. */
  function declared(name: string): DeployTarget {
    const t = targets.get(name);
    if (!t)
      throw planError(`target ${String(name).slice(0, 100)} is not declared in this worker's DEPLOY_TARGETS_FILE`);
    return t;
  }

  /** The version running now: the last deploy's outcome, else the target's currentVersion command. */
  async function currentVersion(t: DeployTarget): Promise<string | null> {
    const last = await lastOutcome(deps.pool, t.name);
    if (last) return last.status === 'succeeded' ? last.version : last.previous_version;
    if (!t.commands.currentVersion) return null;
    const out = await shell(t.commands.currentVersion, { cwd: t.cwd, env: commandEnv(t, {}), timeoutMs: 60_000 });
    const v = out.outputTail.trim().split('\n').pop()?.trim() ?? '';
    if (out.exitCode !== 0)
      throw planError(`currentVersion command failed (exit ${out.exitCode}): ${out.outputTail.slice(-500)}`);
    if (!DEPLOY_VERSION.test(v))
      throw planError(`currentVersion command printed an invalid version: ${v.slice(0, 200)}`);
    return v;
  }

  return {
    async planDeploy(input: {
      target: string;
      kind: DeployInput['kind'];
      version?: string;
      bump?: Bump;
      skipBackup?: boolean;
      /** The deploy overrides a freeze window: it needs an approval even where the target asks none. */
      freezeOverride?: { window: string; until: string; reason: string };
    }): Promise<DeployPlan> {
      const t = declared(input.target);
      const previous = await currentVersion(t);
      let version: string;
      let command: DeployPlan['command'] = 'deploy';
      if (input.version !== undefined) {
        version = input.version;
        if (input.kind === 'rollback' && !(await versionShipped(deps.pool, t.name, version))) {
          throw planError(
            `${version.slice(0, 200)} never succeeded on ${t.name}: a rollback only returns to a version that shipped; deploy it instead (with its approval and backup)`,
          );
        }
      } else if (input.kind === 'rollback') {
        // Back to what ran before the current version.
        const back = await versionBefore(deps.pool, t.name, previous);
        if (!back)
          throw planError(`no version to roll ${t.name} back to from ${previous ?? 'nothing'}; give toVersion`);
        version = back;
        if (t.commands.rollback) command = 'rollback';
      } else {
        if (!input.bump) throw planError('give version or bump');
        if (!previous) throw planError(`cannot bump: no previous version of ${t.name} is known`);
        const bumped = bumpVersion(previous, input.bump);
        if (!bumped) throw planError(`cannot bump ${previous}: not a semantic version`);
        version = bumped;
      }
      if (!DEPLOY_VERSION.test(version)) throw planError(`invalid version ${version.slice(0, 200)}`);
      const deploy = input.kind === 'deploy';
      const backupDatabase = deploy && !input.skipBackup ? (t.backupDatabase ?? null) : null;
      const override = deploy ? input.freezeOverride : undefined;
      const requiresApproval = deploy && (t.requiresApproval || override !== undefined);
      const steps = [
        ...(override
          ? [
              `wait up to ${t.approvalTimeoutSec} s for another key's approval: overrides freeze window ${override.window} (until ${override.until}): ${override.reason}`,
            ]
          : requiresApproval
            ? [`wait up to ${t.approvalTimeoutSec} s for approval`]
            : []),
        ...(backupDatabase ? [`back up ${backupDatabase} (verified) first`] : []),
        command === 'rollback'
          ? `run the rollback command (VERSION=${previous}, PREVIOUS_VERSION=${version})`
          : `run the deploy command (VERSION=${version}, PREVIOUS_VERSION=${previous ?? ''})`,
        `health gate on ${t.health.url}: ${t.health.successThreshold} good in a row within ${t.health.timeoutSec} s`,
        ...(t.watchWindowSec > 0 ? [`watch for ${t.watchWindowSec} s`] : []),
        ...(deploy ? [previous ? `on failure roll back to ${previous}` : 'on failure: nothing to roll back to'] : []),
      ];
      return {
        target: t.name,
        environment: t.environment,
        kind: input.kind,
        previousVersion: previous,
        version,
        command,
        requiresApproval,
        backupDatabase,
        steps,
        settings: targetSettings(t),
        targetsDigest: digest,
      };
    },

    async runCommand(input: {
      target: string;
      which: 'deploy' | 'rollback';
      version: string;
      previousVersion: string | null;
    }): Promise<CommandResult> {
      const t = declared(input.target);
      const command = t.commands[input.which];
      if (!command) throw planError(`${t.name} has no ${input.which} command`);
      for (const v of [input.version, input.previousVersion]) {
        if (v !== null && v !== '' && !DEPLOY_VERSION.test(v)) throw planError(`invalid version ${v.slice(0, 200)}`);
      }
      const ctx = Context.current();
      const result = await shell(command, {
        cwd: t.cwd,
        env: commandEnv(t, { VERSION: input.version, PREVIOUS_VERSION: input.previousVersion ?? '' }),
        timeoutMs: t.timeoutSec * 1000,
        onBeat: () => ctx.heartbeat(),
        signal: ctx.cancellationSignal,
      });
      if (ctx.cancellationSignal.aborted) throw new CancelledFailure(`${input.which} command killed: deploy canceled`);
      deps.log.info(
        { target: t.name, which: input.which, exit: result.exitCode, ms: result.durationMs },
        'deploy command finished',
      );
      return result;
    },

    /** One measurement of one of the target's analysis metrics (activities/deploys/analysis.ts). */
    async analysisSample(input: { target: string; metric: string; version: string }): Promise<HealthSample> {
      return measureMetric(deps.config, declared(input.target), input.metric, input.version);
    },

    async healthSample(input: {
      target: string;
      phase: HealthSample['phase'];
      version: string;
    }): Promise<HealthSample> {
      const h = declared(input.target).health;
      const { url, expectStatus, expectVersion: expectVersionField } = h;
      const timeoutMs = h.requestTimeoutSec * 1000;
      const at = new Date();
      const t0 = performance.now();
      const sample: HealthSample = {
        phase: input.phase,
        at: at.toISOString(),
        ok: false,
        status: null,
        latencyMs: 0,
        versionSeen: null,
      };
      try {
        // A redirect is the answer, not a hop: a health URL that redirects elsewhere fails the sample (the gate
        // must not vouch for whatever host the redirect names).
        const res = await fetch(url, {
          signal: AbortSignal.timeout(timeoutMs),
          headers: { accept: 'application/json' },
          redirect: 'manual',
        });
        const text = (await res.text()).slice(0, 65_536);
        sample.status = res.status;
        if (expectVersionField) {
          try {
            sample.versionSeen = field(JSON.parse(text), expectVersionField);
          } catch {
            sample.error = 'health response is not JSON';
          }
        }
        sample.ok = res.status === expectStatus && (!expectVersionField || sample.versionSeen === input.version);
        if (!sample.ok && !sample.error) {
          sample.error =
            res.status !== expectStatus
              ? `status ${res.status}, expected ${expectStatus}`
              : `version ${sample.versionSeen ?? 'missing'}, expected ${input.version}`;
        }
      } catch (err) {
        sample.error =
          (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err as Error).message;
      }
      sample.latencyMs = Math.round(performance.now() - t0);
      return sample;
    },

    async recordDeploy(input: {
      result: DeployResult;
      input: DeployInput;
      target: { name: string; environment: string };
      startedAt: string;
    }): Promise<void> {
      const info = Context.current().info;
      await recordDeployRow(deps.pool, {
        ...input,
        workflowId: info.workflowExecution?.workflowId ?? '',
        runId: info.workflowExecution?.runId ?? '',
      });
      const r = input.result;
      // The deploy's first steps are news too: a Slack channel hears of it when it starts or waits for a yes.
      await publishDeployProgress(events, r, input.input, input.target);
    },

    /** Email ops and emit `deploy.<status>` for every outcome; a failed rollback is a critical email. */
    async reportDeploy(input: { result: DeployResult; target: string; environment: string }): Promise<void> {
      const r = input.result;
      const version = r.plan?.version ?? '?';
      await publishDeployOutcome(events, r, { name: input.target, environment: input.environment });
      const to = deps.config.mail.opsEmail;
      if (!to) {
        deps.log.warn({ deploy: r.id, status: r.status }, 'deploy finished; OPS_EMAIL is unset, report not emailed');
        return;
      }
      const critical = r.status === 'failed';
      const subject = `[opsflow] ${critical ? '[CRITICAL] ' : ''}deploy ${input.target} ${version}: ${r.status.replace('_', ' ')}`;
      const samples = r.samples
        .map(
          (s) =>
            `  ${s.at} ${s.phase.padEnd(13)} ${s.ok ? 'ok ' : 'BAD'} ${String(s.status ?? '—').padStart(3)} ${String(s.latencyMs).padStart(5)} ms ${s.versionSeen ?? ''} ${s.error ?? ''}`,
        )
        .join('\n');
      const text = [
        `Deploy ${r.id} of ${input.target} (${input.environment}) → ${version}: ${r.status.toUpperCase()}`,
        r.reason ? `Reason: ${r.reason}` : '',
        critical ? 'The rollback failed too: the service may be down. Act now.' : '',
        `Previous version: ${r.plan?.previousVersion ?? '—'}`,
        r.decision ? `${r.decision.approved ? 'Approved' : 'Rejected'} by ${r.decision.by} at ${r.decision.at}` : '',
        r.detectionMs !== undefined ? `Failure detected after ${(r.detectionMs / 1000).toFixed(1)} s` : '',
        r.recoveryMs !== undefined ? `Previous version healthy again after ${(r.recoveryMs / 1000).toFixed(1)} s` : '',
        '',
        'Timeline:',
        ...r.timeline.map((e) => `  ${e.at} ${e.step}${e.detail ? ` — ${e.detail}` : ''}`),
        '',
        r.samplesOmitted
          ? `Health samples (the first and newest ${r.samples.length} of ${r.samples.length + r.samplesOmitted}):`
          : 'Health samples:',
        samples || '  (none)',
        r.deploy ? `\nDeploy command output (tail):\n${r.deploy.outputTail}` : '',
        r.rollback ? `\nRollback command output (tail):\n${r.rollback.outputTail}` : '',
      ]
        .filter((l) => l !== '')
        .join('\n');
      await deps.mailer.send({ to, subject, text });
    },
  };
};
