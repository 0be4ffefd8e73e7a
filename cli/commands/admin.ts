/** status, schedules, keys — what `health-check.sh` and the crontab were, and the keys that replace one flat key. */
import type { Command } from 'commander';
import { age, call, CliError, EXIT, usage, table, type Ctx } from '../context.js';
import { run } from '../run.js';
import type { components } from '../../api/client/index.js';

type Report = components['schemas']['StatusReport'];
type Schedule = components['schemas']['Schedule'];

async function status(ctx: Ctx): Promise<number> {
  const { out } = ctx;
  let report: Report;
  try {
    report = await call(ctx.url, ctx.api.GET('/v1/status'));
  } catch (err) {
    // The API itself is part of the answer: unreachable or failing is "something is wrong" (1), not a usage error.
    if (!(err instanceof CliError) || (err.apiError && !/^(internal|unavailable)$/.test(err.apiError.code))) throw err;
    out.emit({ ok: false, problems: [err.message] });
    out.line(`${out.c.red('✗')} API ${ctx.url}: ${err.message}`);
    return EXIT.outcome;
  }
  out.emit(report);
  const ok = (b: boolean) => (b ? out.c.green('✔') : out.c.red('✗'));
  const check = (name: string, c: Report['checks']['postgres']) =>
    `${ok(c.ok)} ${name}${c.ok ? '' : ` ${out.c.dim(c.error)}`}`;
  out.line(
    `${ok(true)} API ${ctx.url}   ${check('PostgreSQL', report.checks.postgres)}   ${check('Temporal', report.checks.temporal)}`,
  );
  const workers = Object.entries(report.workers);
  out.line(`workers: ${workers.map(([f, n]) => `${f} ${n === null ? '?' : n === 0 ? out.c.red('0') : n}`).join(', ')}`);
  for (const b of report.backups) {
    const when = b.ageSeconds === null ? 'never verified' : `verified ${age(b.ageSeconds)} ago`;
    out.line(
      `${ok(!b.stale)} backup ${b.database}: ${when} (limit ${age(b.maxAgeSeconds)})${b.lastBackup && b.lastBackup.status !== 'verified' ? `; last run ${b.lastBackup.status}` : ''}`,
    );
  }
  if (report.webhooks) {
    const w = report.webhooks;
    out.line(
      `${ok(w.deadLetters === 0 && w.failingEndpoints.length === 0 && w.disabledEndpoints.length === 0)} webhooks: ${w.deadLetters} dead letters, ${w.failingEndpoints.length} failing endpoints, ${w.disabledEndpoints.length} disabled`,
    );
  }
  if (report.deploys) out.line(`deploys running: ${report.deploys.length}`);
  if (report.schedules) {
    const s = report.schedules;
    out.line(`schedules: ${s.length}, ${s.filter((x) => x.paused).length} paused`);
  }
  for (const n of report.notices) out.line(`${out.c.yellow('!')} ${n}`);
  for (const p of report.problems) out.line(`${out.c.red('✗')} ${p}`);
  out.line(report.ok ? out.c.green('all good') : out.c.red(`${report.problems.length} problem(s)`));
  return report.ok ? EXIT.ok : EXIT.outcome;
}

function scheduleRows(ctx: Ctx, items: Schedule[]): void {
  table(
    ctx.out,
    ['ID', 'SPEC', 'STATE', 'NEXT RUN', 'LAST RUN'],
    items.map((s) => [
      s.id,
      s.spec,
      s.paused ? `paused${s.note ? `: ${s.note}` : ''}` : s.applied ? 'active' : 'not applied',
      s.nextRuns[0],
      s.lastRun ? `${s.lastRun.outcome} (${s.lastRun.takenAt})` : null,
    ]),
  );
}

export function adminCommands(program: Command): void {
  program
    .command('status')
    .description(
      'Everything at a glance: API, PostgreSQL, Temporal, workers, last verified backup per database, dead letters, failing endpoints, running deploys, paused schedules; exit 1 when something is wrong',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  opsflow status\n  */5 * * * * opsflow status --json > /dev/null || alert   # from cron or a monitor',
    )
    .action(run(status));

  const schedules = program
    .command('schedules')
    .description('The schedules that replace the crontab: list, pause, unpause, trigger')
    .action(
      run(async (ctx) => {
        const answer = await call(ctx.url, ctx.api.GET('/v1/schedules'));
        ctx.out.emit(answer);
        scheduleRows(ctx, answer.items);
      }),
    );
  schedules
    .command('pause')
    .argument('<id>', 'a schedule id (opsflow schedules)')
    .requiredOption('--note <text>', 'why (shown in the Temporal UI and here)')
    .action(
      run(async (ctx, id: string, o: { note: string }) => {
        const s = await call(
          ctx.url,
          ctx.api.POST('/v1/schedules/{id}/pause', { params: { path: { id } }, body: { note: o.note } }),
        );
        ctx.out.emit(s);
        ctx.out.line(`paused ${id}`);
      }),
    );
  schedules
    .command('unpause')
    .argument('<id>', 'a schedule id')
    .option('--note <text>', 'recorded with the unpause')
    .action(
      run(async (ctx, id: string, o: { note?: string }) => {
        const s = await call(
          ctx.url,
          ctx.api.POST('/v1/schedules/{id}/unpause', {
            params: { path: { id } },
            body: o.note ? { note: o.note } : {},
          }),
        );
        ctx.out.emit(s);
        ctx.out.line(`unpaused ${id}`);
      }),
    );
  schedules
    .command('trigger')
    .argument('<id>', 'a schedule id')
    .description('Run now, once')
    .action(
      run(async (ctx, id: string) => {
        const s = await call(ctx.url, ctx.api.POST('/v1/schedules/{id}/trigger', { params: { path: { id } } }));
        ctx.out.emit(s);
        ctx.out.line(`triggered ${id}`);
      }),
    );

  program
    .command('audit')
    .description('Who did what through the API and the console, newest first (needs audit:read)')
    .option('--actor <keyId>', 'only this key')
    .option('--action <operation>', 'only this operation, e.g. createEndpoint, revokeApiKey, consoleLogin')
    .option('--resource <resource>', 'only this resource (endpoints/ep_…), or a prefix ending in * (endpoints/*)')
    .option('--outcome <outcome>', 'succeeded, refused, denied, failed or pending (written ahead, never completed)')
    .option('--since <time>', 'an ISO time: from then on')
    .option('--until <time>', 'an ISO time: before then')
    .option('--limit <n>', 'rows (1-200)', '50')
    .option('--cursor <cursor>', 'the next page, as the previous one printed it')
    .addHelpText(
      'after',
      '\nExamples:\n  opsflow audit --resource "endpoints/*" --since 2026-12-01T00:00:00Z\n  opsflow audit --actor key_… --outcome denied --json',
    )
    .action(
      run(async (ctx, o: Record<string, string | undefined>) => {
        for (const t of ['since', 'until'] as const) {
          if (o[t] !== undefined && Number.isNaN(Date.parse(o[t]))) throw usage(`--${t} is not a time: ${o[t]}`);
        }
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw usage(`--limit must be 1-200: ${o.limit}`);
        const query = {
          actor: o.actor,
          action: o.action,
          resource: o.resource,
          outcome: o.outcome as 'succeeded' | undefined,
          since: o.since && new Date(o.since).toISOString(),
          until: o.until && new Date(o.until).toISOString(),
          cursor: o.cursor,
          limit,
        };
        const answer = await call(ctx.url, ctx.api.GET('/v1/audit', { params: { query } }));
        ctx.out.emit(answer);
        table(
          ctx.out,
          ['AT', 'WHO', 'ACTION', 'RESOURCE', 'OUTCOME', 'VIA', 'REQUEST'],
          answer.items.map((r) => [
            r.at,
            r.actor ? `${r.actor.keyName} (${r.actor.keyId})` : null,
            r.action,
            r.resource,
            `${r.outcome}${r.status === null ? '' : ` ${r.status}`}${r.detail?.error ? ` ${r.detail.error}` : ''}`,
            r.via,
            r.requestId,
          ]),
        );
        if (answer.nextCursor) ctx.out.line(ctx.out.c.dim(`more: --cursor ${answer.nextCursor}`));
      }),
    );

  const keys = program.command('keys').description('Scoped API keys (needs keys:admin)');
  keys
    .command('create')
    .argument('<name>', 'who or what uses it, e.g. ci-deployer')
    .requiredOption('-s, --scope <scope...>', 'scopes or presets (e.g. deployer, read, deploys:run)')
    .option('--expires <time>', 'an ISO time after which the key stops working')
    .option('--tenant <id>', "limit the key to one tenant's webhooks and subscriptions")
    .addHelpText('after', '\nExamples:\n  opsflow keys create ci-deployer -s deployer --expires 2027-06-01T00:00:00Z')
    .action(
      run(async (ctx, name: string, o: { scope: string[]; expires?: string; tenant?: string }) => {
        if (o.expires !== undefined && Number.isNaN(Date.parse(o.expires)))
          throw usage(`--expires is not a time: ${o.expires}`);
        const body = {
          name,
          scopes: o.scope as never,
          ...(o.expires ? { expiresAt: new Date(o.expires).toISOString() } : {}),
          ...(o.tenant ? { tenantId: o.tenant } : {}),
        };
        const k = await call(ctx.url, ctx.api.POST('/v1/api-keys', { body }));
        ctx.out.emit(k);
        ctx.out.line(`${ctx.out.c.bold(k.key)}`);
        if (!ctx.out.json)
          process.stderr.write(`key ${k.id} (${k.scopes.join(', ')}): shown this once; store it now\n`);
      }),
    );
  keys.command('list').action(
    run(async (ctx) => {
      const answer = await call(ctx.url, ctx.api.GET('/v1/api-keys'));
      ctx.out.emit(answer);
      table(
        ctx.out,
        ['ID', 'NAME', 'PREFIX', 'SCOPES', 'TENANT', 'MADE BY', 'EXPIRES', 'REVOKED'],
        answer.items.map((k) => [
          k.id,
          k.name,
          k.prefix,
          k.scopes.join(','),
          k.tenantId,
          k.createdByKey,
          k.expiresAt,
          k.revokedAt,
        ]),
      );
    }),
  );
  keys
    .command('revoke')
    .argument('<id>', 'a key id (opsflow keys list)')
    .action(
      run(async (ctx, id: string) => {
        const k = await call(ctx.url, ctx.api.DELETE('/v1/api-keys/{id}', { params: { path: { id } } }));
        ctx.out.emit(k);
        ctx.out.line(`revoked ${id} (${k.name}); refused everywhere within 5 s`);
        for (const m of k.alsoRevoked) ctx.out.line(`  also revoked ${m.id} (${m.name}), minted under it`);
      }),
    );

  program
    .command('portal-link')
    .argument('<tenant>', 'the tenant whose portal it opens')
    .description(
      "A one-time link to the tenant's portal (its endpoints, catalogue, deliveries, recovers); needs read and endpoints:write",
    )
    .option('--expires-in <age>', 'how long the link and its portal last: 30m, 24h, 7d (default 24h)')
    .addHelpText('after', '\nExamples:\n  opsflow portal-link acme\n  opsflow portal-link acme --expires-in 2h')
    .action(
      run(async (ctx, tenant: string, o: { expiresIn?: string }) => {
        let expiresInSec: number | undefined;
        if (o.expiresIn !== undefined) {
          const m = /^(\d+)\s*([smhd])$/.exec(o.expiresIn);
          if (!m) throw usage(`--expires-in must be an age such as 30m, 24h or 7d; got ${o.expiresIn}`);
          expiresInSec = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
        }
        const link = await call(
          ctx.url,
          ctx.api.POST('/v1/tenants/{tenantId}/portal-links', {
            params: { path: { tenantId: tenant } },
            body: expiresInSec === undefined ? {} : { expiresInSec },
          }),
        );
        ctx.out.emit(link);
        ctx.out.line(link.url);
        if (!ctx.out.json) {
          process.stderr.write(
            `opens once, until ${link.expiresAt}, as key ${link.keyId} (${link.scopes.join(', ')})\n`,
          );
        }
      }),
    );
}
