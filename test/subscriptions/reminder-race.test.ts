/**
 * The in-flight reminder race: a reminder whose send is being retried through an SMTP outage when the
 * subscription is renewed (or canceled) must not go out once the mail server is back — its period is over. The
 * send re-checks, in its transaction, that its period is still the subscription's. Real Temporal, PostgreSQL, an
 * SMTP server that refuses (451) until told otherwise.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptionWorkflowId } from '../../lib/subscriptions/contract.js';
import { apiCaller } from '../helpers/api.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.js';
import { waitFor } from '../helpers/wait.js';

const DAY = 24 * 3600 * 1000;

describe('subscription reminders in flight', () => {
  let h: Harness;
  let workers: TestWorkers;
  let smtp: SmtpCapture;
  let refusing = true;
  const call = (method: string, path: string, body?: unknown) => apiCaller(() => testApp(h))(method, path, body);

  beforeAll(async () => {
    smtp = await startSmtpCapture({ refusing: () => refusing });
    h = await createHarness({ SMTP_URL: smtp.url });
    workers = await startWorkers(h, ['subscriptions']);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await smtp?.close();
  });

  /** The reminder activity's attempt count while it is being retried (0 once it is not pending). */
  const sendAttempts = async (id: string) => {
    const d = await h.client.workflow.getHandle(subscriptionWorkflowId('race', id)).describe();
    return d.raw.pendingActivities?.find((a) => a.activityType?.name === 'sendReminder')?.attempt ?? 0;
  };

  for (const change of ['renew', 'cancel'] as const) {
    it(`a reminder retried through an SMTP outage is not sent after a ${change}`, async () => {
      refusing = true;
      const id = `sub-race-${change}-${randomBytes(3).toString('hex')}`;
      const email = `${id}@example.com`;
      // Its 3-day reminder is due at once.
      const put = await call('PUT', `/v1/subscriptions/${id}`, {
        tenantId: 'race',
        email,
        expiresAt: new Date(Date.now() + 2 * DAY).toISOString(),
        reminderOffsets: ['3d'],
        sendAt: null,
      });
      expect(put.status).toBe(201);
      // The mail server refused it at least twice: the send is being retried.
      await waitFor(
        () => sendAttempts(id),
        (n) => n >= 3,
        20_000,
      );
      const changed =
        change === 'renew'
          ? await call('POST', `/v1/subscriptions/${id}/renew`, {
              expiresAt: new Date(Date.now() + 30 * DAY).toISOString(),
            })
          : await call('POST', `/v1/subscriptions/${id}/cancel`, { reason: 'churned' });
      expect(changed.status).toBe(200);
      // The mail server is back; the pending attempt runs (backoff ≤ 8 s here) and sends nothing.
      refusing = false;
      await waitFor(
        () => sendAttempts(id),
        (n) => n === 0,
        30_000,
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(smtp.messages.filter((m) => JSON.stringify(m.to).includes(email))).toEqual([]);
      const sent = await h.pool.query('SELECT 1 FROM opsflow.subscription_notifications WHERE subscription_id = $1', [
        id,
      ]);
      expect(sent.rowCount).toBe(0);
      await h.client.workflow
        .getHandle(subscriptionWorkflowId('race', id))
        .terminate('test done')
        .catch(() => undefined);
    }, 90_000);
  }
});
