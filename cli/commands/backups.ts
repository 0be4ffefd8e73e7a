/** backup, backups, restore — what `backup.sh` and `restore.sh` did, with verification and a catalogue. */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { age, bytes, call, usage, table } from '../context.js';
import { followBackup, followRestore } from '../follow.js';
import { followOptions, run, withFollow, type FollowFlags } from '../run.js';
import { limitOf } from './deploys.js';
import type { components } from '../../api/client/index.js';

type Backup = components['schemas']['Backup'];

/** The database name typed back, from --confirm or (on a terminal) a prompt; anything else changes nothing. */
async function confirmation(database: string, given: string | undefined): Promise<string> {
  if (given !== undefined) return given;
  if (!process.stdin.isTTY) {
    throw usage(
      `a restore replaces ${database}: pass --confirm ${database} (no terminal to ask on); nothing was changed`,
    );
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(`This restores into ${database}. Type the database name to go on: `)).trim();
  } finally {
    rl.close();
  }
}

function stepTime(b: Backup, step: string): string | null {
  const ms = b.steps?.[step]?.ms;
  return ms === undefined ? null : age(ms / 1000);
}

export function backupCommands(program: Command): void {
  withFollow(
    program
      .command('backup')
      .argument('[database]', 'a database named in BACKUP_DATABASE_URLS (default: the first)')
      .description(
        'Back up a database now: pg_dump to every store, then verify each copy (sha256) and a restore into a scratch database',
      ),
  )
    .addHelpText('after', '\nExamples:\n  opsflow backup\n  opsflow backup app --no-wait')
    .action(
      run(async (ctx, database: string | undefined, o: FollowFlags) => {
        const follow = followOptions(o);
        const { id } = await call(ctx.url, ctx.api.POST('/v1/backups', { body: database ? { database } : {} }));
        ctx.out.emit({ event: 'started', id });
        ctx.out.line(`backup ${ctx.out.c.bold(id)} started`);
        if (o.wait === false) return 0;
        return followBackup(ctx, id, follow);
      }),
    );

  program
    .command('backups')
    .description('The backup catalogue, newest first (like pgBackRest info)')
    .option('--database <name>', 'one database')
    .option('--status <status>', 'verified, failed or running')
    .option('-n, --limit <n>', 'how many', '20')
    .action(
      run(async (ctx, o: { database?: string; status?: string; limit: string }) => {
        const query = { database: o.database, status: o.status as never, limit: limitOf(o.limit) };
        const answer = await call(ctx.url, ctx.api.GET('/v1/backups', { params: { query } }));
        ctx.out.emit(answer);
        table(
          ctx.out,
          ['ID', 'STATUS', 'AGE', 'SIZE', 'DUMP', 'VERIFY', 'STORES'],
          answer.items.map((b) => [
            b.id,
            b.status,
            b.startedAt ? age((Date.now() - Date.parse(b.startedAt)) / 1000) : null,
            typeof b.sizeBytes === 'number' ? bytes(b.sizeBytes) : null,
            stepTime(b, 'dump'),
            stepTime(b, 'verify'),
            (b.locations ?? []).map((l) => l.store).join(',') || null,
          ]),
        );
      }),
    );

  withFollow(
    program
      .command('restore')
      .argument('<backup-id>', 'a verified backup (opsflow backups)')
      .argument('<database>', "the database to restore into, on the backup's server")
      .description('Restore a verified backup into a database (asks to type the database name, or --confirm)')
      .option('--confirm <database>', 'the database name again, for scripts (no prompt)')
      .option('--overwrite', 'replace a database that is not empty')
      .option('--server <name>', "another server from RESTORE_SERVERS (disaster recovery: the backup's roles first)"),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  opsflow restore backup:app:2026-11-28T02-00-00-000Z app_restore_1\n  opsflow restore backup:app:… app --overwrite --confirm app\n  opsflow restore backup:app:… app --server dr --confirm app',
    )
    .action(
      run(
        async (
          ctx,
          backupId: string,
          database: string,
          o: FollowFlags & { confirm?: string; overwrite?: boolean; server?: string },
        ) => {
          const follow = followOptions(o);
          const typed = await confirmation(database, o.confirm);
          if (typed !== database)
            throw usage(`the name typed (${typed || 'nothing'}) is not ${database}; nothing was changed`);
          const answer = await call(
            ctx.url,
            ctx.api.POST('/v1/backups/{id}/restore', {
              params: { path: { id: backupId } },
              body: {
                targetDatabase: database,
                confirm: typed,
                overwrite: o.overwrite === true,
                ...(o.server ? { server: o.server } : {}),
              },
            }),
          );
          ctx.out.emit({ event: 'started', id: answer.id });
          ctx.out.line(`restore ${ctx.out.c.bold(answer.id)} started`);
          if (o.wait === false) return 0;
          return followRestore(ctx, answer.id, follow);
        },
      ),
    );
}
