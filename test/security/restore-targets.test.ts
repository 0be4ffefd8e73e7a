/**
 * Trust: a restore writes only where the source's allow-list says. RESTORE_TARGETS (per source database;
 * default: the source itself and `<source>_restore_*`) is parsed strictly; the server's own databases, Temporal's
 * and opsflow's are refused whatever it says — by the API (test/backups/restore.test.ts) and again by the worker's
 * own check, which a workflow started around the API still meets. Real PostgreSQL for the target's state.
 */
import { describe, expect, it } from 'vitest';
import { createRestoreTargetActivities } from '../../activities/backups/restore-target.js';
import { restoreTargetRefusal } from '../../lib/backups/databases.js';
import { ConfigError, loadConfig } from '../../lib/config.js';
import { databaseUrlOf } from '../helpers/databases.js';

const config = (env: Record<string, string> = {}) =>
  loadConfig({
    DATABASE_URL: databaseUrlOf('opsflow_sec_restore_own'),
    BACKUP_DATABASE_URLS: `${databaseUrlOf('orders')},${databaseUrlOf('billing')}`,
    OPSFLOW_API_KEYS: 'restore-key-0123456789abcdef-0123456789',
    ...env,
  });

describe('security: restore targets', () => {
  it('by default a source restores into itself and <source>_restore_* only', async () => {
    const c = config();
    for (const ok of ['orders', 'orders_restore_1', 'orders_restore_', 'orders_restore_2026_12_04']) {
      expect(await restoreTargetRefusal(c, 'orders', ok), ok).toBeUndefined();
    }
    for (const no of ['billing', 'orders_restored', 'orders_copy', 'xorders', 'orders_restore']) {
      expect(await restoreTargetRefusal(c, 'orders', no), no).toMatch(/is not a restore target of orders/);
    }
  });

  it("RESTORE_TARGETS replaces a source's list; the server's, Temporal's and opsflow's databases are refused whatever it says", async () => {
    const c = config({ RESTORE_TARGETS: 'orders=orders_staging,scratch_*, *;billing=billing_copy' });
    expect(await restoreTargetRefusal(c, 'orders', 'orders_staging')).toBeUndefined();
    expect(await restoreTargetRefusal(c, 'orders', 'scratch_42')).toBeUndefined();
    // `*` allows any name, but never these.
    for (const name of ['postgres', 'template0', 'template1', 'temporal', 'temporal_visibility']) {
      expect(await restoreTargetRefusal(c, 'orders', name), name).toMatch(/never a restore target/);
    }
    expect(await restoreTargetRefusal(c, 'orders', 'opsflow_sec_restore_own')).toMatch(/opsflow's own state/);
    // billing's list no longer has the default.
    expect(await restoreTargetRefusal(c, 'billing', 'billing')).toMatch(/RESTORE_TARGETS allows billing_copy/);
    expect(await restoreTargetRefusal(c, 'billing', 'billing_copy')).toBeUndefined();
    expect(await restoreTargetRefusal(c, 'orders', 'bad name;')).toMatch(/invalid database name/);
  });

  it('a bad RESTORE_TARGETS stops start-up naming the problem', () => {
    const problems = (value: string) => {
      try {
        config({ RESTORE_TARGETS: value });
        return [];
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems;
      }
    };
    expect(problems('shop=shop_copy')).toEqual(['RESTORE_TARGETS: shop is not a database in BACKUP_DATABASE_URLS']);
    expect(problems('orders')[0]).toMatch(/is not source=pattern/);
    expect(problems('orders=')[0]).toMatch(/is not source=pattern/);
    expect(problems('orders=a=b')[0]).toMatch(/is not source=pattern/);
    expect(problems('orders=orders;drop')[0]).toMatch(/"drop" is not source=pattern/);
    expect(problems('orders=orders-copy')[0]).toMatch(/each target is a database name/);
    expect(problems(' orders = orders_x , orders_y ; ')).toEqual([]);
  });

  it("the worker's own check refuses too: a restore workflow started around the API fails before writing", async () => {
    const activities = createRestoreTargetActivities({ config: config() });
    const checkRestoreTarget = (input: { database: string; target: string; overwrite: boolean }) =>
      activities.checkRestoreTarget(input);
    await expect(checkRestoreTarget({ database: 'orders', target: 'temporal', overwrite: true })).rejects.toThrow(
      /never a restore target/,
    );
    await expect(checkRestoreTarget({ database: 'orders', target: 'billing', overwrite: true })).rejects.toThrow(
      /not a restore target of orders/,
    );
  });
});
