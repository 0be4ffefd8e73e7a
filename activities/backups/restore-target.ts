/**
 * The restore's target: checked before anything is written (on the source's allow-list, never opsflow's,
 * Temporal's or the server's own database; a non-empty one only with overwrite), and again at the promotion, which puts the verified staging copy in its place.
 */
import pg from 'pg';
import {
  maintenanceUrl,
  restoreServerOf,
  restoreTargetRefusal,
  targetState,
  type TargetState,
} from '../../lib/backups/databases.js';
import { unmarkScratch } from '../../lib/backups/scratch.js';
import type { Config } from '../../lib/config.js';
import { inTransaction, quoteIdent } from '../../lib/db.js';
import { BackupErrorType, fail } from './pg-tools.js';

export const createRestoreTargetActivities = (deps: { config: Config }) => ({
  /**
   * Checks a restore target before anything is written: allowed for the source (restoreTargetRefusal); a
   * non-empty one only with `overwrite`.
   */
  async checkRestoreTarget(input: {
    database: string;
    target: string;
    overwrite: boolean;
    /** A RESTORE_SERVERS entry; absent: the source's own server. */
    server?: string;
  }): Promise<TargetState> {
    const server = restoreServerOf(input.database, input.server);
    const refusal = await restoreTargetRefusal(deps.config, input.database, input.target, server);
    if (refusal) throw fail(BackupErrorType.BadTarget, refusal);
    const state = await targetState(deps.config, server, input.target);
    if (state === 'non-empty' && !input.overwrite) {
      throw fail(
        BackupErrorType.BadTarget,
        `database ${input.target} is not empty; pass overwrite: true to replace it`,
      );
    }
    return state;
  },

  /**
   * Puts a verified restore in place: drops the old target (if any) and renames the restored database to
   * its name. Idempotent: when the restored database is already gone and the target exists, it was done.
   */
  async promoteRestoredDatabase(input: {
    database: string;
    from: string;
    to: string;
    /** Absent in runs started before the re-check: they replace as they always did. */
    overwrite?: boolean;
    server?: string;
  }): Promise<void> {
    const server = restoreServerOf(input.database, input.server);
    const admin = new pg.Client({ connectionString: maintenanceUrl(deps.config, server) });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datname = ANY ($1)',
        [[input.from, input.to]],
      );
      const names = rows.map((r) => r.datname);
      if (!names.includes(input.from)) {
        if (names.includes(input.to)) return;
        throw fail(BackupErrorType.RestoreFailed, `restored database ${input.from} disappeared before promotion`);
      }
      // The target was checked before the restore began, minutes ago: check again right before it is replaced.
      const refusal = await restoreTargetRefusal(deps.config, input.database, input.to, server);
      if (refusal) {
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(input.from)} WITH (FORCE)`);
        throw fail(BackupErrorType.BadTarget, `${refusal}; nothing was replaced`);
      }
      if (input.overwrite === false && (await targetState(deps.config, server, input.to)) === 'non-empty') {
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(input.from)} WITH (FORCE)`);
        throw fail(
          BackupErrorType.BadTarget,
          `database ${input.to} was written to while the restore ran (it is no longer empty); nothing was replaced — restore again with overwrite to replace it`,
        );
      }
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(input.to)} WITH (FORCE)`);
      // The staging copy stops being scratch as it takes the target's name: both or neither, so the janitor
      // never sees a promoted database marked.
      await inTransaction(admin, async (tx) => {
        await unmarkScratch(tx, input.from);
        await tx.query(`ALTER DATABASE ${quoteIdent(input.from)} RENAME TO ${quoteIdent(input.to)}`);
      });
    } finally {
      await admin.end();
    }
  },
});
