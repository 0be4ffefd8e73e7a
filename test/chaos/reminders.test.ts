/**
 * Chaos (issue 18, scenario e): the mail server is down while reminders fall due. Ten subscriptions, each with
 * two reminders and its expiry due in the first 40 s; SMTP refuses connections until 25 s in. Counted at the
 * mail server by Message-ID (one per subscription, period and milestone): every due email arrives, none twice,
 * and every subscription ends expired in PostgreSQL with one audit row per step.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../global-setup.js';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from '../helpers/harness.js';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.js';
import { waitFor } from '../helpers/wait.js';
import { report, sleep } from './figures.js';

describe('chaos: SMTP down while reminders are due', () => {
  let h: Harness;
  let workers: TestWorkers;
  let smtp: SmtpCapture | undefined;
  let smtpPort: number;

  beforeAll(async () => {
    smtpPort = await freePort();
    h = await createHarness({ SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, OPS_EMAIL: 'ops@example.com' });
    workers = await startWorkers(h, ['subscriptions', 'webhooks']);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await smtp?.close();
  });

  it('(e) every due reminder and expiry email arrives once after the mail server comes back', async () => {
    const run = randomBytes(3).toString('hex');
    const ids = Array.from({ length: 10 }, (_, i) => `chaos-${run}-${i}`);
    const t0 = Date.now();
    const expiresAt = new Date(t0 + 40_000).toISOString();
    for (const id of ids) {
      const res = await testApp(h).request(`/v1/subscriptions/${id}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          tenantId: 'chaos',
          email: `${id}@example.com`,
          expiresAt,
          timezone: 'UTC',
          reminderOffsets: ['30s', '20s'],
          sendAt: null,
          graceDays: 0,
        }),
      });
      expect(res.status, await res.text()).toBeLessThan(300);
    }
    const due = ids.length * 3; // two reminders and the expiry notice each
    await sleep(Math.max(0, t0 + 25_000 - Date.now()));
    smtp = await startSmtpCapture({ port: smtpPort });
    const backAfterMs = Date.now() - t0;
    const mine = () => smtp!.messages.filter((m) => ids.some((id) => JSON.stringify(m.to).includes(`${id}@`)));
    await waitFor(
      () => new Set(mine().map((m) => m.messageId)).size,
      (n) => n >= due,
      150_000,
    ).catch(() => undefined);
    const allInMs = Date.now() - t0;
    await sleep(3000);
    const byId = new Map<string, number>();
    for (const m of mine()) byId.set(m.messageId ?? '', (byId.get(m.messageId ?? '') ?? 0) + 1);
    const expired = await waitFor(
      async () =>
        (
          await h.pool.query<{ n: string }>(
            "SELECT count(*) AS n FROM opsflow.subscriptions WHERE id = ANY ($1) AND status = 'expired'",
            [ids],
          )
        ).rows[0]!.n,
      (n) => Number(n) === ids.length,
      30_000,
    ).catch((n: unknown) => n);
    const audit = await h.pool.query<{ subscription_id: string; action: string; n: string }>(
      `SELECT subscription_id, action, count(*) AS n FROM opsflow.subscription_audit
       WHERE subscription_id = ANY ($1) AND action = 'expired' GROUP BY 1, 2`,
      [ids],
    );
    await report({
      scenario: 'e. SMTP down, reminders due',
      fault: `mail server refusing connections for the first ${(backAfterMs / 1000).toFixed(0)} s; 10 subscriptions with 2 reminders and the expiry due within 40 s`,
      accepted: due,
      delivered: byId.size,
      lost: due - byId.size,
      duplicated: [...byId.values()].filter((n) => n > 1).length,
      notes: `all emails in ${(allInMs / 1000).toFixed(0)} s after the subscriptions were created; ${String(expired)} of 10 rows expired, ${audit.rowCount} 'expired' audit rows`,
    });
    expect(byId.size).toBe(due);
    expect([...byId.values()].every((n) => n === 1)).toBe(true);
    expect(Number(expired)).toBe(ids.length);
    expect(audit.rows.map((r) => Number(r.n))).toEqual(ids.map(() => 1));
  }, 240_000);
});
