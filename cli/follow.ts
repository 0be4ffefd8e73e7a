/**
 * Following a run until it ends, like `gh run watch`: poll the API once a second, print what is new (steps,
 * health samples, bytes dumped, copies verified), and end with the run's outcome as the exit code. Ctrl-C
 * and --timeout detach: the run goes on in Temporal, and the message says how to follow it again.
 */
import { CliError, EXIT, age, bytes, call, type Ctx } from './context.js';

export interface FollowOptions {
  /** Give up following after this long (exit 4); undefined: follow until the end. */
  timeoutMs?: number;
  intervalMs?: number;
}

const POLL_ERRORS_TOLERATED = 10;
const NOT_FOUND_GRACE_MS = 30_000;
const time = (iso: string | undefined) => (iso ? new Date(iso).toISOString().slice(11, 19) : '--:--:--');

/**
 * Polls `fetch` until `done(row)` returns an exit code. Transient API failures (5xx, the API restarting) are
 * retried up to 10 times in a row; a 4xx ends the follow at once.
 */
async function poll<Row>(
  ctx: Ctx,
  id: string,
  opts: FollowOptions,
  fetch: () => Promise<Row>,
  onRow: (row: Row) => number | undefined,
): Promise<number> {
  const started = Date.now();
  const interval = opts.intervalMs ?? 1000;
  let interrupted = false;
  let wake: (() => void) | undefined;
  const onSigint = () => {
    interrupted = true;
    wake?.();
  };
  process.on('SIGINT', onSigint);
  let failures = 0;
  try {
    for (;;) {
      let row: Row | undefined;
      try {
        row = await fetch();
        failures = 0;
      } catch (err) {
        // A run just started may not be catalogued yet (its first activity writes the row): not found is
        // transient for a while.
        if (!(err instanceof CliError)) throw err;
        const code = err.apiError?.code;
        const notYet = code === 'not_found' && Date.now() - started < NOT_FOUND_GRACE_MS;
        const transient = code === undefined || code === 'internal' || code === 'unavailable';
        if (!notYet && (!transient || ++failures > POLL_ERRORS_TOLERATED)) throw err;
      }
      if (row) {
        const code = onRow(row);
        if (code !== undefined) return code;
      }
      if (interrupted) return detach(ctx, id, 'detached (Ctrl-C)', EXIT.detached);
      if (opts.timeoutMs !== undefined && Date.now() - started >= opts.timeoutMs) {
        return detach(ctx, id, `still running after ${age(opts.timeoutMs / 1000)} (--timeout)`, EXIT.timeout);
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, interval);
      });
      if (interrupted) return detach(ctx, id, 'detached (Ctrl-C)', EXIT.detached);
    }
  } finally {
    process.off('SIGINT', onSigint);
    ctx.out.pause();
  }
}

function detach(ctx: Ctx, id: string, why: string, code: number): number {
  ctx.out.pause();
  ctx.out.emit({ event: 'detached', id, reason: why });
  if (!ctx.out.json) {
    process.stderr.write(`${why}: ${id} goes on. Follow it again with: opsflow watch ${id}\n`);
  }
  return code;
}

const DEPLOY_OK = new Set(['succeeded']);
const BACKUP_STEPS = ['dump', 'verify', 'record', 'retention', 'report'];
const stepOrder = (s: string) => (BACKUP_STEPS.includes(s) ? BACKUP_STEPS.indexOf(s) : BACKUP_STEPS.length);

/** A deploy or rollback: approval wait, backup child, command, each health sample, the verdict. */
export function followDeploy(ctx: Ctx, id: string, opts: FollowOptions): Promise<number> {
  const { out } = ctx;
  let steps = 0;
  let samples = 0;
  let status: string | undefined;
  return poll(
    ctx,
    id,
    opts,
    async () => await call(ctx.url, ctx.api.GET('/v1/deploys/{id}', { params: { path: { id } } })),
    (row) => {
      const finishedAt = row.finishedAt;
      const finished = finishedAt !== null;
      const live = row.live;
      const timeline = (finished ? row.timeline : (live?.timeline ?? row.timeline)) ?? [];
      const sampleList = (finished ? row.samples : (live?.samples ?? row.samples)) ?? [];
      // A long watch keeps only its first and newest samples: count what was taken, show what is new.
      const omitted = (finished ? row.samplesOmitted : (live?.samplesOmitted ?? row.samplesOmitted)) ?? 0;
      const now = finished ? row.status : (live?.status ?? row.status);
      if (now !== status) {
        status = now;
        out.emit({ event: 'status', id, status });
        if (status === 'awaiting_approval') {
          out.line(
            `${out.c.yellow('…')} waiting for approval by another key: ${out.c.bold(`opsflow approve ${id}`)} (or reject)`,
          );
        }
      }
      for (const entry of timeline.slice(steps)) {
        out.emit({ event: 'step', id, ...entry });
        if (entry.step !== 'done') {
          out.line(
            `${out.c.dim(time(entry.at))} ${out.c.cyan('▸')} ${entry.step}${entry.detail ? ` ${out.c.dim(entry.detail)}` : ''}`,
          );
        }
      }
      steps = Math.max(steps, timeline.length);
      const fresh = Math.min(sampleList.length, Math.max(0, omitted + sampleList.length - samples));
      for (const s of sampleList.slice(sampleList.length - fresh)) {
        out.emit({ event: 'sample', id, ...s });
        const mark = s.ok ? out.c.green('✔') : out.c.red('✗');
        if (s.phase === 'analysis') {
          // A metric measurement: its value and how it measured against the condition.
          const why = s.measurement !== 'success' && s.error ? ` ${out.c.dim(s.error)}` : '';
          out.line(
            `${out.c.dim(time(s.at))}   ${s.measurement === 'inconclusive' ? out.c.yellow('?') : mark} analysis ${s.metric ?? ''} = ${s.value ?? '—'} (${s.measurement ?? '—'})${why}`,
          );
          continue;
        }
        const what = s.status !== null ? `HTTP ${s.status}` : (s.error ?? 'no answer');
        const version = s.versionSeen ? ` version ${s.versionSeen}` : '';
        out.line(
          `${out.c.dim(time(s.at))}   ${mark} ${s.phase} ${what} ${s.latencyMs} ms${version}${!s.ok && s.error && s.status !== null ? ` ${out.c.dim(s.error)}` : ''}`,
        );
      }
      samples = Math.max(samples, omitted + sampleList.length);
      if (finishedAt === null) {
        const step = live?.step ?? timeline.at(-1)?.step ?? 'starting';
        out.progress(`${row.kind} ${row.target} ${row.version ?? ''}: ${status} — ${step}`);
        return undefined;
      }
      out.emit({ event: 'result', deploy: row });
      const took = (Date.parse(finishedAt) - Date.parse(row.startedAt)) / 1000;
      const what = `${row.kind} of ${row.target} ${row.version ?? ''}`.replace(/\s+$/, '');
      if (DEPLOY_OK.has(row.status)) {
        out.line(`${out.c.green('✔')} ${what} succeeded in ${age(took)}`);
        return EXIT.ok;
      }
      out.line(
        `${out.c.red('✗')} ${what} ${out.c.bold(row.status)} after ${age(took)}${row.reason ? `: ${row.reason}` : ''}`,
      );
      if (row.status === 'rolled_back')
        out.line(`  ${row.target} is back on ${row.previousVersion ?? 'the previous version'}`);
      return EXIT.outcome;
    },
  );
}

/** A backup: each step, bytes dumped (heartbeat details), each stored copy verified, the verification table. */
export function followBackup(ctx: Ctx, id: string, opts: FollowOptions): Promise<number> {
  const { out } = ctx;
  let step: string | undefined;
  let lastBytes = -1;
  const verified = new Set<string>();
  const seen = new Set<string>();
  return poll(
    ctx,
    id,
    opts,
    async () => await call(ctx.url, ctx.api.GET('/v1/backups/{id}', { params: { path: { id } } })),
    (row) => {
      const p = row.progress;
      if (p) {
        if (p.step !== step) {
          step = p.step;
          seen.add(step);
          out.emit({ event: 'step', id, step });
          out.line(`${out.c.dim(time(new Date().toISOString()))} ${out.c.cyan('▸')} ${step}`);
        }
        if (typeof p.bytes === 'number' && p.bytes !== lastBytes) {
          lastBytes = p.bytes;
          out.emit({ event: 'progress', id, step, bytes: p.bytes });
        }
        if (typeof p.verified === 'string' && !verified.has(p.verified)) {
          verified.add(p.verified);
          out.emit({ event: 'copy-verified', id, store: p.verified });
          out.line(`    ${out.c.green('✔')} the copy in ${p.verified} reads back with the same sha256`);
        }
        out.progress(
          `backup of ${row.database ?? id.split(':')[1] ?? id}: ${step}${lastBytes >= 0 && step === 'dump' ? ` ${bytes(lastBytes)}` : ''}`,
        );
      }
      if (row.status === 'running' || !row.finishedAt) return undefined;
      // Steps shorter than a poll were not seen running: the catalogue row has them all, with their times.
      const steps = row.steps ?? {};
      for (const s of Object.keys(steps).sort((a, b) => stepOrder(a) - stepOrder(b))) {
        if (seen.has(s)) continue;
        seen.add(s);
        out.emit({ event: 'step', id, step: s });
        out.line(`${out.c.dim('        ')} ${out.c.cyan('▸')} ${s}`);
      }
      out.emit({ event: 'result', backup: row });
      const v = row.verification;
      if (v?.tables?.length) {
        const bad = v.tables.filter((t) => t.restored !== t.expected);
        out.line(
          `  verification: ${v.tables.length - bad.length}/${v.tables.length} tables have the same row count after a restore`,
        );
        for (const t of bad)
          out.line(`    ${out.c.red('✗')} ${t.table}: expected ${t.expected}, restored ${t.restored ?? '—'}`);
      }
      const timing = ['dump', 'verify']
        .filter((s) => steps[s]?.ms !== undefined)
        .map((s) => `${s} ${age(steps[s]!.ms / 1000)}`)
        .join(', ');
      if (row.status === 'verified') {
        out.line(
          `${out.c.green('✔')} backup ${id} verified: ${bytes(row.sizeBytes ?? 0)}${timing ? `; ${timing}` : ''}`,
        );
        return EXIT.ok;
      }
      out.line(`${out.c.red('✗')} backup ${id} ${row.status}${row.reason ? `: ${row.reason}` : ''}`);
      return EXIT.outcome;
    },
  );
}

/** A restore: load, check the target, fetch (bytes), restore, promote, and the verification. */
export function followRestore(ctx: Ctx, id: string, opts: FollowOptions): Promise<number> {
  const { out } = ctx;
  let step: string | undefined;
  return poll(
    ctx,
    id,
    opts,
    async () => await call(ctx.url, ctx.api.GET('/v1/restores/{id}', { params: { path: { id } } })),
    (row) => {
      const p = row.progress;
      if (p && p.step !== step) {
        step = p.step;
        out.emit({ event: 'step', id, step });
        out.line(`${out.c.dim(time(new Date().toISOString()))} ${out.c.cyan('▸')} ${step}`);
      }
      if (p)
        out.progress(
          `restore into ${row.targetDatabase}: ${step}${typeof p.bytes === 'number' ? ` ${bytes(p.bytes)}` : ''}`,
        );
      if (row.status === 'running') return undefined;
      out.emit({ event: 'result', restore: row });
      if (row.status === 'restored') {
        out.line(`${out.c.green('✔')} ${row.backupId} restored into ${row.targetDatabase}`);
        return EXIT.ok;
      }
      out.line(`${out.c.red('✗')} restore ${row.status}${row.reason ? `: ${row.reason}` : ''}`);
      return EXIT.outcome;
    },
  );
}

/** `opsflow watch <id>`: the follower for the kind of run the id names. */
/** A recover: how many of the window's deliveries have been sent again, then how it ended. */
export function followRecover(ctx: Ctx, id: string, opts: FollowOptions): Promise<number> {
  const { out } = ctx;
  let resent = -1;
  return poll(
    ctx,
    id,
    opts,
    async () => await call(ctx.url, ctx.api.GET('/v1/recovers/{id}', { params: { path: { id } } })),
    (row) => {
      if (row.resent !== resent) {
        resent = row.resent;
        out.emit({ event: 'progress', id, resent: row.resent, total: row.total });
      }
      if (row.state === 'running') {
        out.progress(`recover of ${row.endpointId}: ${row.resent} of ${row.total} sent again`);
        return undefined;
      }
      out.emit({ event: 'result', recover: row });
      if (row.state === 'finished') {
        out.line(`${out.c.green('✔')} recover ${id}: ${row.resent} deliveries sent again to ${row.endpointId}`);
        return EXIT.ok;
      }
      out.line(
        `${out.c.red('✗')} recover ${id} ${out.c.bold(row.state)} after ${row.resent} of ${row.total}${row.error ? `: ${row.error}` : ''}`,
      );
      return EXIT.outcome;
    },
  );
}

export function followAny(ctx: Ctx, id: string, opts: FollowOptions): Promise<number> {
  if (id.startsWith('deploy:')) return followDeploy(ctx, id, opts);
  if (id.startsWith('rcv_')) return followRecover(ctx, id, opts);
  if (id.startsWith('backup:')) return followBackup(ctx, id, opts);
  if (id.startsWith('restore:')) return followRestore(ctx, id, opts);
  throw new CliError(
    `cannot tell what ${id} is: ids of deploys, backups, restores and recovers start with deploy:, backup:, restore: or rcv_`,
    EXIT.usage,
  );
}
