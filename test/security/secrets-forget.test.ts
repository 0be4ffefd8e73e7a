/**
 * Usability of the same machinery: after the encryption key is lost, `npm run secrets:forget` lists the endpoints
 * whose secret or routing key no key opens (changing nothing), and with `--yes` gives each a new signing secret
 * (shown once) and disables the PagerDuty ones whose routing key is lost. Real PostgreSQL (a database of this
 * file's own), the real script as a process.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretBox } from '../../lib/secret-box.js';
import { forgetLostSecrets } from '../../lib/webhooks/lost-secrets.js';
import { apiCaller } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, testApp, TEST_ENCRYPTION_KEY, type Harness } from '../helpers/harness.js';
import { spawnEntry } from '../helpers/processes.js';

const db = `opsflow_sec_forget_${process.pid}`;

describe('security: forgetting secrets whose key was lost', () => {
  let h: Harness;
  const ids = { fine: '', lostSecret: '', lostRouting: '' };
  const stranger = createSecretBox({ current: randomBytes(32), previous: [] });

  beforeAll(async () => {
    await freshStateDatabase(db);
    h = await createHarness({ DATABASE_URL: databaseUrlOf(db), WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    const api = apiCaller(() => testApp(h));
    const make = async (body: Record<string, unknown>) =>
      (await api<{ id: string }>('POST', '/v1/endpoints', body)).body.id;
    ids.fine = await make({ url: 'http://127.0.0.1:9/fine' });
    ids.lostSecret = await make({ url: 'http://127.0.0.1:9/lost' });
    ids.lostRouting = await make({
      url: 'http://127.0.0.1:9/pd',
      format: 'pagerduty',
      routingKey: 'R0123456789abcdef0123456789abcde',
      eventTypes: ['backup.stale'],
    });
    // As another installation (a lost key) would have stored them.
    await h.pool.query('UPDATE opsflow.webhook_endpoints SET secret = $2 WHERE id = $1', [
      ids.lostSecret,
      stranger.encrypt('whsec_c29tZXRoaW5nIHNlY3JldCBhbmQgbG9uZw=='),
    ]);
    await h.pool.query('UPDATE opsflow.webhook_endpoints SET routing_key = $2 WHERE id = $1', [
      ids.lostRouting,
      stranger.encrypt('R0123456789abcdef0123456789abcde'),
    ]);
  });
  afterAll(async () => {
    await h?.close();
    await dropDatabase(db);
  });

  const snapshot = async () =>
    (await h.pool.query('SELECT * FROM opsflow.webhook_endpoints ORDER BY id')).rows as Record<string, unknown>[];

  it('the script lists what no key opens and changes nothing without --yes', async () => {
    const before = await snapshot();
    const child = spawnEntry('scripts/secrets-forget.ts', {
      DATABASE_URL: databaseUrlOf(db),
      OPSFLOW_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    });
    await once(child.process, 'exit');
    expect(child.process.exitCode).toBe(0);
    expect(child.output()).toContain(`${ids.lostSecret} (127.0.0.1:9): secret cannot be decrypted`);
    expect(child.output()).toContain(`${ids.lostRouting} (127.0.0.1:9): routing_key cannot be decrypted`);
    expect(child.output()).not.toContain(ids.fine);
    expect(child.output()).toContain('run again with --yes');
    expect(await snapshot()).toEqual(before);
  });

  it('with --yes: a new signing secret (returned once), the PagerDuty endpoint disabled; the rest untouched', async () => {
    const box = createSecretBox(h.config.encryption);
    const fineBefore = (await snapshot()).find((r) => r.id === ids.fine);
    const done = await forgetLostSecrets(h.pool, box, { apply: true });
    expect(done.map((d) => d.endpointId).sort()).toEqual([ids.lostSecret, ids.lostRouting].sort());
    const rows = await snapshot();
    const lost = rows.find((r) => r.id === ids.lostSecret)!;
    const secret = done.find((d) => d.endpointId === ids.lostSecret)!.newSecret!;
    expect(secret).toMatch(/^whsec_/);
    expect(box.decrypt(lost.secret as string)).toBe(secret);
    expect(lost.enabled).toBe(true);
    const pd = rows.find((r) => r.id === ids.lostRouting)!;
    expect(pd).toMatchObject({ enabled: false });
    expect(pd.disabled_reason).toMatch(/routing key lost/);
    expect(rows.find((r) => r.id === ids.fine)).toEqual(fineBefore);
    // Nothing left to forget but the routing key, which only its owner can give again.
    expect((await forgetLostSecrets(h.pool, box, { apply: false })).map((d) => d.lost)).toEqual([['routing_key']]);
  });
});
