/** deploy, promote, rollback, approve, reject, deploys, watch — what `deploy.sh` did, with approval and a health gate. */
import type { Command } from 'commander';
import { call, usage, table, type Ctx } from '../context.js';
import { followAny, followDeploy } from '../follow.js';
import { followOptions, run, withFollow, type FollowFlags } from '../run.js';

async function started(ctx: Ctx, id: string, what: string, flags: FollowFlags): Promise<number> {
  ctx.out.emit({ event: 'started', id });
  ctx.out.line(`${what} ${ctx.out.c.bold(id)} started`);
  if (flags.wait === false) {
    ctx.out.line(`follow it with: opsflow watch ${id}`);
    return 0;
  }
  return followDeploy(ctx, id, followOptions(flags));
}

/** A dry run's answer: the plan, and that nothing changed. */
function printPlan(
  ctx: Ctx,
  answer: {
    plan: {
      target: string;
      environment: string;
      previousVersion: string | null;
      version: string;
      command: string;
      requiresApproval: boolean;
      backupDatabase: string | null;
      steps: string[];
    };
  },
): number {
  const plan = answer.plan;
  ctx.out.emit(answer);
  ctx.out.line(
    `plan for ${plan.target} (${plan.environment}): ${plan.previousVersion ?? '(nothing deployed)'} → ${ctx.out.c.bold(plan.version)}`,
  );
  ctx.out.line(
    `  command: ${plan.command}; approval: ${plan.requiresApproval ? 'required' : 'not required'}; backup first: ${plan.backupDatabase ?? 'no'}`,
  );
  for (const s of plan.steps) ctx.out.line(`  ${ctx.out.c.dim('·')} ${s}`);
  ctx.out.line(ctx.out.c.dim('dry run: nothing was changed'));
  return 0;
}

/** `staging 1.2.0 (good) → 1.1.0`: the source's version, whether it may come, and what the target runs. */
function promotionText(p: {
  from: string;
  candidate: { version: string; state: string; at: string | null } | null;
  current: string | null;
}): string {
  const c = p.candidate;
  const state = !c ? '' : c.state === 'soaking' ? ` (soaking until ${c.at})` : ` (${c.state.replace('_', ' ')})`;
  return `${p.from} ${c?.version ?? '—'}${state} → ${p.current ?? '—'}`;
}

export function deployCommands(program: Command): void {
  withFollow(
    program
      .command('deploy')
      .argument('<target>', 'a target declared in DEPLOY_TARGETS_FILE (opsflow deploys --targets lists them)')
      .description(
        'Deploy a version to a target: approval if the target needs it, pre-deploy backup, command, health gate, watch window; rolls back on failure',
      )
      .option('-v, --version <version>', 'the version to deploy')
      .option('-t, --bump <part>', 'bump the current version instead: major, minor or patch')
      .option('--dry-run', 'show the plan; change nothing')
      .option('--skip-backup', 'no pre-deploy backup')
      .option(
        '--override-freeze <reason>',
        "deploy during a freeze window anyway: another key's approval is then needed",
      ),
  )
    .addHelpText(
      'after',
      `
Examples:
  opsflow deploy web -v 2.0.0
  opsflow deploy web -t minor --dry-run
  opsflow deploy web -v "$TAG" --timeout 30m      # in CI: exits non-zero when the deploy rolls back
  opsflow deploy web -v 2.0.1 --override-freeze "hotfix for the checkout outage"`,
    )
    .action(
      run(
        async (
          ctx,
          target: string,
          o: FollowFlags & {
            version?: string;
            bump?: string;
            dryRun?: boolean;
            skipBackup?: boolean;
            overrideFreeze?: string;
          },
        ) => {
          if ((o.version === undefined) === (o.bump === undefined))
            throw usage('give exactly one of -v VERSION and -t major|minor|patch');
          if (o.bump !== undefined && !['major', 'minor', 'patch'].includes(o.bump)) {
            throw usage(`-t must be major, minor or patch (got ${o.bump})`);
          }
          const body = {
            target,
            ...(o.version !== undefined ? { version: o.version } : { bump: o.bump as 'major' | 'minor' | 'patch' }),
            dryRun: o.dryRun === true,
            skipBackup: o.skipBackup === true,
            ...(o.overrideFreeze !== undefined ? { overrideFreeze: { reason: o.overrideFreeze } } : {}),
          };
          const answer = await call(ctx.url, ctx.api.POST('/v1/deploys', { body }));
          return 'plan' in answer ? printPlan(ctx, answer) : started(ctx, answer.id, 'deploy', o);
        },
      ),
    );

  withFollow(
    program
      .command('promote')
      .argument('<target>', 'a target with promotesFrom (e.g. production, promoting from staging)')
      .description(
        "Deploy to a target the version its source target runs now, once it succeeded and soaked there; then the target's own approval, backup, gate and watch",
      )
      .option('--dry-run', 'show the plan; change nothing')
      .option('--skip-backup', 'no pre-deploy backup')
      .option(
        '--override-freeze <reason>',
        "promote during a freeze window anyway: another key's approval is then needed",
      ),
  )
    .addHelpText('after', '\nExamples:\n  opsflow promote production\n  opsflow promote production --dry-run')
    .action(
      run(
        async (
          ctx,
          target: string,
          o: FollowFlags & { dryRun?: boolean; skipBackup?: boolean; overrideFreeze?: string },
        ) => {
          const answer = await call(
            ctx.url,
            ctx.api.POST('/v1/deploy-targets/{name}/promote', {
              params: { path: { name: target } },
              body: {
                dryRun: o.dryRun === true,
                skipBackup: o.skipBackup === true,
                ...(o.overrideFreeze !== undefined ? { overrideFreeze: { reason: o.overrideFreeze } } : {}),
              },
            }),
          );
          return 'plan' in answer ? printPlan(ctx, answer) : started(ctx, answer.id, 'promotion', o);
        },
      ),
    );

  withFollow(
    program
      .command('rollback')
      .argument('<target>', 'the target')
      .argument('[version]', 'a version that once succeeded on the target (default: the rollback command)')
      .description('Fast manual rollback: no approval, no backup, health-gated')
      .option('-r, --reason <text>', 'why (recorded)', 'manual rollback (opsflow CLI)'),
  )
    .addHelpText('after', '\nExamples:\n  opsflow rollback web\n  opsflow rollback web 1.5.0 -r "checkout broken"')
    .action(
      run(async (ctx, target: string, version: string | undefined, o: FollowFlags & { reason: string }) => {
        const answer = await call(
          ctx.url,
          ctx.api.POST('/v1/deploy-targets/{name}/rollback', {
            params: { path: { name: target } },
            body: { reason: o.reason, ...(version ? { toVersion: version } : {}) },
          }),
        );
        return started(ctx, answer.id, 'rollback', o);
      }),
    );

  program
    .command('approve')
    .argument('<deploy-id>', 'a deploy waiting for approval')
    .description('Approve a deploy (four-eyes: not with the key that asked for it)')
    .option('-m, --comment <text>', 'recorded with the decision')
    .action(
      run(async (ctx, id: string, o: { comment?: string }) => {
        const answer = await call(
          ctx.url,
          ctx.api.POST('/v1/deploys/{id}/approve', {
            params: { path: { id } },
            body: o.comment ? { comment: o.comment } : {},
          }),
        );
        ctx.out.emit(answer);
        ctx.out.line(`${ctx.out.c.green('✔')} approved ${id}; follow it with: opsflow watch ${id}`);
      }),
    );

  program
    .command('reject')
    .argument('<deploy-id>', 'a deploy waiting for approval')
    .description('Reject a deploy')
    .requiredOption('-r, --reason <text>', 'why (recorded and reported)')
    .action(
      run(async (ctx, id: string, o: { reason: string }) => {
        const answer = await call(
          ctx.url,
          ctx.api.POST('/v1/deploys/{id}/reject', { params: { path: { id } }, body: { reason: o.reason } }),
        );
        ctx.out.emit(answer);
        ctx.out.line(`rejected ${id}`);
      }),
    );

  program
    .command('deploys')
    .description('Deploy history, newest first (or the declared targets with --targets)')
    .option('--target <name>', 'one target')
    .option('--status <status>', 'succeeded, rolled_back, failed, awaiting_approval, …')
    .option('-n, --limit <n>', 'how many', '20')
    .option('--targets', 'list the declared targets instead')
    .action(
      run(async (ctx, o: { target?: string; status?: string; limit: string; targets?: boolean }) => {
        if (o.targets) {
          const answer = await call(ctx.url, ctx.api.GET('/v1/deploy-targets'));
          ctx.out.emit(answer);
          table(
            ctx.out,
            ['TARGET', 'ENVIRONMENT', 'APPROVAL', 'BACKUP FIRST', 'HEALTH', 'FROZEN', 'PROMOTES'],
            answer.items.map((t) => [
              t.name,
              t.environment,
              t.requiresApproval ? 'required' : 'no',
              t.backupDatabase,
              t.health.url,
              t.frozen ? `${t.frozen.window} until ${t.frozen.until}` : t.freezeWindows.length > 0 ? 'no' : null,
              t.promotion ? promotionText(t.promotion) : null,
            ]),
          );
          return;
        }
        const query = { target: o.target, status: o.status as never, limit: limitOf(o.limit) };
        const answer = await call(ctx.url, ctx.api.GET('/v1/deploys', { params: { query } }));
        ctx.out.emit(answer);
        table(
          ctx.out,
          ['ID', 'STATUS', 'VERSION', 'FROM', 'BY', 'APPROVED BY', 'TOOK'],
          answer.items.map((d) => [
            d.id,
            d.status,
            d.version,
            d.previousVersion,
            d.requestedBy?.keyName,
            d.decision?.by,
            d.finishedAt ? `${Math.round((Date.parse(d.finishedAt) - Date.parse(d.startedAt)) / 1000)} s` : 'running',
          ]),
        );
      }),
    );

  withFollow(
    program
      .command('watch')
      .argument('<id>', 'a deploy (deploy:…), backup (backup:…), restore (restore:…) or recover (rcv_…) id')
      .description('Follow a run until it ends and exit with its outcome (after Ctrl-C, --no-wait or --timeout)'),
    { noWait: false },
  ).action(run(async (ctx, id: string, o: FollowFlags) => followAny(ctx, id, followOptions(o))));
}

export function limitOf(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 200)
    throw usage(`--limit must be a whole number from 1 to 200 (got ${text})`);
  return n;
}
