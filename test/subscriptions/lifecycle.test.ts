/**
 * Subscription lifecycle end to end: the API, a real Temporal server, PostgreSQL and an SMTP capture.
 * Offsets are seconds (or real days for a subscription created inside its window).
 */
import { randomBytes } from 'node:crypto';
import type { ParsedMail } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createSubscriptionActivities } from '../../activities/subscriptions/index.js';
import { declareSchedules } from '../../lib/schedules/declarations.js';
import { planPeriod } from '../../lib/subscriptions/planner.js';
import {
  subscriptionWorkflowId,
  updateDetailsUpdate,
  viewQuery,
  type SubscriptionDetails,
  type SubscriptionView,
} from '../../lib/subscriptions/contract.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { apiCaller } from '../helpers/api.js';
import { saveHistory } from '../helpers/histories.js';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.js';
import { waitFor } from '../helpers/wait.js';

describe('subscription lifecycle', () => {
  let h: Harness;
  let workers: TestWorkers;
  let smtp: SmtpCapture;
  let app: ReturnType<typeof testApp>;

  const api = apiCaller(() => app);
  const call = <T = SubscriptionView & { error?: { code: string } }>(method: string, path: string, body?: unknown) =>
    api<T>(method, path, body);
  const newId = () => `sub-${randomBytes(4).toString('hex')}`;
  const mailTo = (email: string) => smtp.messages.filter((m) => m.to && JSON.stringify(m.to).includes(email));
  const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();
  const DAY = 86_400_000;

  beforeAll(async () => {
    smtp = await startSmtpCapture();
    h = await createHarness({ SMTP_URL: smtp.url, OPS_EMAIL: 'ops@example.com', OPSFLOW_TIMEZONE: 'Europe/Berlin' });
    workers = await startWorkers(h, ['subscriptions', 'webhooks']);
    app = testApp(h);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await smtp?.close();
  });

  it('sends reminders in order with their urgency, then expires: row, email, event, audit', async () => {
    const id = newId();
    const email = `${id}@example.com`;
    const put = await call('PUT', `/v1/subscriptions/${id}`, {
      tenantId: 'tenant-a',
      email,
      plan: 'pro',
      expiresAt: inSeconds(7),
      reminderOffsets: ['5s', '3s'],
      sendAt: null,
    });
    expect(put.status).toBe(201);
    expect(put.body.status).toBe('active');
    expect(put.body.nextAction).toMatchObject({ kind: 'reminder', milestone: '5s', urgency: 'critical' });
    expect(put.body.nextAction.description).toMatch(/^reminder 5s \(critical\) at /);

    const mails = await waitFor(
      () => mailTo(email),
      (m) => m.length === 3,
      20_000,
    );
    expect(mails.map((m) => m.subject)).toEqual([
      expect.stringContaining('(5s)') as string,
      expect.stringContaining('(3s)') as string,
      'Your subscription has expired',
    ]);
    expect(mails[0]!.text).toContain('expires on');
    expect(mails[0]!.html).toContain('Access ends');

    const result: unknown = await h.client.workflow.getHandle(subscriptionWorkflowId('tenant-a', id)).result();
    expect(result).toMatchObject({ status: 'expired' });
    const row = await h.pool.query<{ status: string }>('SELECT status FROM opsflow.subscriptions WHERE id = $1', [id]);
    expect(row.rows[0]?.status).toBe('expired');
    const events = await h.pool.query('SELECT 1 FROM opsflow.webhook_events WHERE type = $1 AND body LIKE $2', [
      'subscription.expired',
      `%${id}%`,
    ]);
    expect(events.rowCount).toBe(1);
    const audit = await h.pool.query<{ action: string }>(
      'SELECT action FROM opsflow.subscription_audit WHERE subscription_id = $1 ORDER BY id',
      [id],
    );
    expect(audit.rows.map((r) => r.action)).toEqual(['created', 'notified', 'notified', 'expired', 'notified']);
    const view = await call('GET', `/v1/subscriptions/${id}`);
    expect(view.body.status).toBe('expired');
    expect(view.body.reminders.map((r) => [r.milestone, r.outcome])).toEqual([
      ['5s', 'sent'],
      ['3s', 'sent'],
    ]);
    await saveHistory(subscriptionWorkflowId('tenant-a', id), 'subscriptions/expired.json');
  });

  it('created inside the window: the most urgent reminder now, no burst; cancel stops the rest', async () => {
    const id = newId();
    const email = `${id}@example.com`;
    const put = await call('PUT', `/v1/subscriptions/${id}`, {
      tenantId: 'tenant-b',
      email,
      expiresAt: new Date(Date.now() + 2 * DAY).toISOString(),
      sendAt: null,
    });
    expect(put.status).toBe(201);
    const mails = await waitFor(
      () => mailTo(email),
      (m) => m.length >= 1,
    );
    expect(mails[0]!.subject).toContain('(3d)');
    expect(mails[0]!.subject).toMatch(/Action needed/); // high urgency
    const view = await waitFor(
      () => call('GET', `/v1/subscriptions/${id}`),
      (v) => v.body.reminders.length === 2,
    );
    expect(view.body.reminders.map((r) => [r.milestone, r.urgency, r.outcome])).toEqual([
      ['7d', 'medium', 'skipped'],
      ['3d', 'high', 'sent'],
    ]);
    expect(view.body.nextAction).toMatchObject({ kind: 'reminder', milestone: '1d', urgency: 'critical' });

    // A change within the period is answered without the workflow (a signal): the same reminders and next action
    // as the workflow then shows, rebuilt from the sends recorded.
    const renamed = await call('PUT', `/v1/subscriptions/${id}`, {
      tenantId: 'tenant-b',
      email,
      expiresAt: view.body.details.expiresAt,
      sendAt: null,
      name: 'Renamed',
    });
    expect(renamed.status).toBe(200);
    const after = await call('GET', `/v1/subscriptions/${id}`);
    expect(after.body.details.name).toBe('Renamed');
    const brief = (v: typeof view.body) => ({
      status: v.status,
      reminders: v.reminders.map((r) => [r.milestone, r.urgency, r.outcome]),
      nextAction: v.nextAction,
    });
    expect(brief(renamed.body)).toEqual(brief(after.body));
    expect(brief(after.body).reminders).toEqual([
      ['7d', 'medium', 'skipped'],
      ['3d', 'high', 'sent'],
    ]);

    const canceled = await call('POST', `/v1/subscriptions/${id}/cancel`, { reason: 'customer left' });
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe('canceled');
    expect(canceled.body.nextAction.kind).toBe('none');
    await h.client.workflow.getHandle(subscriptionWorkflowId('tenant-b', id)).result();
    const row = await h.pool.query<{ status: string; cancel_reason: string }>(
      'SELECT status, cancel_reason FROM opsflow.subscriptions WHERE id = $1',
      [id],
    );
    expect(row.rows[0]).toEqual({ status: 'canceled', cancel_reason: 'customer left' });
    expect((await call('POST', `/v1/subscriptions/${id}/cancel`)).status).toBe(409);
    expect((await call('POST', `/v1/subscriptions/${id}/renew`, { expiresAt: inSeconds(99999) })).status).toBe(409);
    expect(mailTo(email)).toHaveLength(1);
    await saveHistory(subscriptionWorkflowId('tenant-b', id), 'subscriptions/renamed-canceled.json');
  });

  it('renewal between reminders: no stale reminder of the old period, new ones planned', async () => {
    const id = newId();
    const email = `${id}@example.com`;
    await call('PUT', `/v1/subscriptions/${id}`, {
      tenantId: 'tenant-c',
      email,
      expiresAt: inSeconds(6),
      reminderOffsets: ['5s', '2s'],
      sendAt: null,
    });
    await waitFor(
      () => mailTo(email),
      (m) => m.length === 1,
    ); // the 5s one
    const handle = h.client.workflow.getHandle(subscriptionWorkflowId('tenant-c', id));
    const firstRun = (await handle.describe()).runId;

    const earlier = await call('POST', `/v1/subscriptions/${id}/renew`, { expiresAt: inSeconds(1) });
    expect(earlier.status).toBe(422);
    const renewed = await call('POST', `/v1/subscriptions/${id}/renew`, {
      expiresAt: new Date(Date.now() + 10 * DAY).toISOString(),
    });
    expect(renewed.status).toBe(200);
    expect(renewed.body.status).toBe('active');
    expect(renewed.body.reminders).toEqual([]);
    expect(renewed.body.nextAction).toMatchObject({ kind: 'reminder', milestone: '5s' });

    // The old period's 2s reminder would have fired by now; it must not.
    await new Promise((r) => setTimeout(r, 6000));
    expect(mailTo(email)).toHaveLength(1);
    const desc = await handle.describe();
    expect(desc.status.name).toBe('RUNNING');
    expect(desc.runId).not.toBe(firstRun); // continued as new for the new period
    const row = await h.pool.query<{ expires_at: Date; status: string }>(
      'SELECT expires_at, status FROM opsflow.subscriptions WHERE id = $1',
      [id],
    );
    expect(row.rows[0]?.status).toBe('active');
    expect(row.rows[0]!.expires_at.getTime()).toBeGreaterThan(Date.now() + 9 * DAY);
    // The run in which the renewal happened (it ends by continuing as new).
    await saveHistory(subscriptionWorkflowId('tenant-c', id), 'subscriptions/renewed.json', firstRun);
    await handle.terminate('test done');
  });

  it('a PUT that moves the expiry starts a new period: its reminders replanned, the old ones never sent', async () => {
    const id = newId();
    const email = `${id}@example.com`;
    const body = { tenantId: 'tenant-c', email, reminderOffsets: ['5s', '3s'], sendAt: null };
    expect((await call('PUT', `/v1/subscriptions/${id}`, { ...body, expiresAt: inSeconds(8) })).status).toBe(201);
    const handle = h.client.workflow.getHandle(subscriptionWorkflowId('tenant-c', id));
    const firstRun = (await handle.describe()).runId;
    // Moved a day out before any reminder fell due: same PUT, new expiry.
    const later = new Date(Date.now() + DAY).toISOString();
    const moved = await call('PUT', `/v1/subscriptions/${id}`, { ...body, expiresAt: later, name: 'Moved' });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body.details).toMatchObject({ expiresAt: later, name: 'Moved' });
    expect(moved.body.nextAction).toMatchObject({ kind: 'reminder', milestone: '5s' });
    expect(Date.parse((moved.body.nextAction as { at: string }).at)).toBe(Date.parse(later) - 5000);
    // The old period's reminders (due 3 s and 5 s from the start) never come.
    await new Promise((r) => setTimeout(r, 7000));
    expect(mailTo(email)).toHaveLength(0);
    const desc = await handle.describe();
    expect(desc.status.name).toBe('RUNNING');
    expect(desc.runId).not.toBe(firstRun);
    const row = await h.pool.query<{ expires_at: Date }>('SELECT expires_at FROM opsflow.subscriptions WHERE id = $1', [
      id,
    ]);
    expect(row.rows[0]!.expires_at.toISOString()).toBe(later);
    await handle.terminate('test done');
  });

  it('a renew retried after a crash between the workflow and the row completes instead of being refused', async () => {
    const id = newId();
    const expiresAt = new Date(Date.now() + 30 * DAY).toISOString();
    const put = await call('PUT', `/v1/subscriptions/${id}`, {
      tenantId: 'tenant-r',
      email: `${id}@example.com`,
      expiresAt,
      reminderOffsets: ['7d'],
      sendAt: null,
    });
    expect(put.status).toBeLessThan(300);
    const to = new Date(Date.now() + 60 * DAY).toISOString();
    expect((await call('POST', `/v1/subscriptions/${id}/renew`, { expiresAt: to })).status).toBe(200);
    // What a crash after the workflow's update and before the row's leaves behind: the row's old expiry.
    await h.pool.query('UPDATE opsflow.subscriptions SET expires_at = $2 WHERE id = $1', [id, expiresAt]);
    const retried = await call('POST', `/v1/subscriptions/${id}/renew`, { expiresAt: to });
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    expect(Date.parse(retried.body.details.expiresAt)).toBe(Date.parse(to));
    const row = await h.pool.query<{ expires_at: Date }>('SELECT expires_at FROM opsflow.subscriptions WHERE id = $1', [
      id,
    ]);
    expect(row.rows[0]!.expires_at.toISOString()).toBe(to);
    // A different, not later, expiry is still refused.
    const other = new Date(Date.now() + 45 * DAY).toISOString();
    expect((await call('POST', `/v1/subscriptions/${id}/renew`, { expiresAt: other })).status).toBe(422);
    await h.client.workflow.getHandle(subscriptionWorkflowId('tenant-r', id)).terminate('test done');
  });

  it('grace, then expired, with the row updated at each step', async () => {
    const id = newId();
    const email = `${id}@example.com`;
    await call('PUT', `/v1/subscriptions/${id}`, {
      tenantId: 'tenant-d',
      email,
      expiresAt: inSeconds(2),
      reminderOffsets: ['1d'],
      graceDays: 3 / 86400, // 3 s
    });
    await waitFor(
      () => h.pool.query<{ status: string }>('SELECT status FROM opsflow.subscriptions WHERE id = $1', [id]),
      (r) => r.rows[0]?.status === 'grace',
    );
    await h.client.workflow.getHandle(subscriptionWorkflowId('tenant-d', id)).result();
    const rows = await h.pool.query<{ status: string }>('SELECT status FROM opsflow.subscriptions WHERE id = $1', [id]);
    expect(rows.rows[0]?.status).toBe('expired');
    const subjects = (
      await waitFor(
        () => mailTo(email),
        (m) => m.length === 3,
      )
    ).map((m: ParsedMail) => m.subject);
    expect(subjects).toEqual([
      'URGENT: your subscription expires tomorrow (1d)', // created inside the 1-day window: sent at once
      'Your subscription expired: grace period started',
      'Your subscription has expired',
    ]);
    const types = await h.pool.query<{ type: string }>(
      "SELECT type FROM opsflow.webhook_events WHERE body LIKE $1 AND type LIKE 'subscription.%' ORDER BY created_at",
      [`%${id}%`],
    );
    expect(types.rows.map((r) => r.type)).toEqual(['subscription.grace', 'subscription.expired']);
  });

  it('a retried reminder (worker crashed after sending) is not sent twice', async () => {
    const id = newId();
    const email = `${id}@example.com`;
    const details: SubscriptionDetails = {
      tenantId: 't',
      email,
      name: null,
      plan: null,
      expiresAt: new Date(Date.now() + 5 * DAY).toISOString(),
      timezone: 'UTC',
      reminderOffsetsMs: [7 * DAY],
      sendAt: null,
      graceDays: 0,
    };
    await h.pool.query(
      `INSERT INTO opsflow.subscriptions (id, tenant_id, email, expires_at, timezone, reminder_offsets_ms) VALUES ($1, 't', $2, $3, 'UTC', '{604800000}')`,
      [id, email, details.expiresAt],
    );
    // The activity a retry would run again, with the same input, after the first run's commit.
    const activities = createSubscriptionActivities({ ...h, queues: h.queues });
    const input = { subscriptionId: id, details, milestone: '7d', urgency: 'medium' as const };
    expect(await activities.sendReminder(input)).toEqual({ sent: true });
    expect(await activities.sendReminder(input)).toEqual({ sent: false });
    await Promise.all([activities.sendReminder(input), activities.sendReminder(input)]);
    await new Promise((r) => setTimeout(r, 300));
    expect(mailTo(email)).toHaveLength(1);
  });

  it('continue-as-new with a lowered threshold keeps the state', async () => {
    const id = newId();
    const details: SubscriptionDetails = {
      tenantId: 't',
      email: `${id}@example.com`,
      name: 'Ada',
      plan: 'team',
      expiresAt: inSeconds(3600),
      timezone: 'UTC',
      reminderOffsetsMs: [3598_000, 3596_000, 60_000],
      sendAt: null,
      graceDays: 0,
    };
    await h.pool.query(
      `INSERT INTO opsflow.subscriptions (id, tenant_id, email, expires_at, timezone, reminder_offsets_ms) VALUES ($1, 't', $2, $3, 'UTC', '{1}')`,
      [id, details.email, details.expiresAt],
    );
    const handle = await h.client.workflow.start('subscriptionLifecycle', {
      taskQueue: h.queues.subscriptions,
      workflowId: subscriptionWorkflowId('t', id),
      args: [
        {
          subscriptionId: id,
          state: { details, status: 'active', plan: planPeriod(details), reminders: [] },
          continueAsNewAfterEvents: 5,
        },
      ],
    });
    const firstRun = handle.firstExecutionRunId;
    await waitFor(
      () => mailTo(details.email),
      (m) => m.length === 2,
    );
    const view = await waitFor(
      () => h.client.workflow.getHandle(subscriptionWorkflowId('t', id)).query(viewQuery),
      (v) => v.reminders.length === 2,
    );
    expect(view.details).toEqual(details);
    expect(view.reminders.map((r) => r.milestone)).toEqual(['3598s', '3596s']);
    expect(view.nextAction).toMatchObject({ kind: 'reminder', milestone: '1m' });
    const desc = await h.client.workflow.getHandle(subscriptionWorkflowId('t', id)).describe();
    expect(desc.runId).not.toBe(firstRun);
    await h.client.workflow.getHandle(subscriptionWorkflowId('t', id)).terminate('test done');
  });

  it('updates that keep the period also continue as new when the history is long (details kept)', async () => {
    const id = newId();
    const details: SubscriptionDetails = {
      tenantId: 't',
      email: `${id}@example.com`,
      name: 'Ada',
      plan: 'team',
      expiresAt: inSeconds(30 * 86_400),
      timezone: 'UTC',
      reminderOffsetsMs: [86_400_000],
      sendAt: null,
      graceDays: 0,
    };
    const handle = await h.client.workflow.start('subscriptionLifecycle', {
      taskQueue: h.queues.subscriptions,
      workflowId: subscriptionWorkflowId('t', id),
      args: [
        {
          subscriptionId: id,
          state: { details, status: 'active', plan: planPeriod(details), reminders: [] },
          continueAsNewAfterEvents: 20,
        },
      ],
    });
    // Nothing is due for weeks: only the updates move this workflow, each a few events.
    for (let i = 1; i <= 8; i++) {
      const next = { ...details, name: `Ada ${i}` };
      await h.client.workflow
        .getHandle(subscriptionWorkflowId('t', id))
        .executeUpdate(updateDetailsUpdate, { args: [{ details: next, plan: planPeriod(next) }] });
    }
    const desc = await waitFor(
      () => h.client.workflow.getHandle(subscriptionWorkflowId('t', id)).describe(),
      (d) => d.runId !== handle.firstExecutionRunId,
      10_000,
    );
    expect(desc.status.name).toBe('RUNNING');
    const view = await h.client.workflow.getHandle(subscriptionWorkflowId('t', id)).query(viewQuery);
    expect(view.details.name).toBe('Ada 8');
    expect(view.nextAction).toMatchObject({ kind: 'reminder' });
    await h.client.workflow.getHandle(subscriptionWorkflowId('t', id)).terminate('test done');
  });

  it('the sweep recreates a missing workflow and mails the expiring-soon report', async () => {
    const id = newId();
    await h.pool.query(
      `INSERT INTO opsflow.subscriptions (id, tenant_id, email, expires_at, timezone, reminder_offsets_ms, send_at)
       VALUES ($1, 'tenant-sweep', $2, now() + interval '12 hours', 'UTC', '{86400000}', NULL)`,
      [id, `${id}@example.com`],
    );
    const result: unknown = await h.client.workflow.execute('subscriptionSweep', {
      taskQueue: h.queues.subscriptions,
      workflowId: `subscription-sweep:test:${id}`,
      args: [{ windowMs: DAY, alertThreshold: 0 }],
    });
    expect(result).toMatchObject({ alert: true });
    expect((result as { restarted: string[] }).restarted).toContain(id);
    const desc = await h.client.workflow.getHandle(subscriptionWorkflowId('tenant-sweep', id)).describe();
    expect(desc.status.name).toBe('RUNNING');
    const report = await waitFor(
      () => smtp.messages.filter((m) => m.subject?.includes('expiring within 24 h') && m.text?.includes(id)),
      (m) => m.length === 1,
    );
    expect(report[0]!.subject).toMatch(/^\[ALERT\]/);
    // The same report as an ops event (Slack): counts and ids, never the customers' addresses.
    const event = await h.pool.query<{ body: string }>(
      `SELECT body FROM opsflow.webhook_events WHERE type = 'subscriptions.expiring' AND body LIKE $1`,
      [`%subscription-sweep:test:${id}"%`],
    );
    expect(event.rows).toHaveLength(1);
    const data = (JSON.parse(event.rows[0]!.body) as { data: { alert: boolean; subscriptions: { id: string }[] } })
      .data;
    expect(data.alert).toBe(true);
    expect(data.subscriptions.map((x) => x.id)).toContain(id);
    expect(event.rows[0]!.body).not.toContain(`${id}@example.com`);
    // Its reminder (1 day before, already due) was sent by the recreated workflow.
    await waitFor(
      () => mailTo(`${id}@example.com`),
      (m) => m.length === 1,
    );
    const again: unknown = await h.client.workflow.execute('subscriptionSweep', {
      taskQueue: h.queues.subscriptions,
      workflowId: `subscription-sweep:test:${id}:2`,
      args: [{ windowMs: DAY }],
    });
    expect((again as { restarted: string[] }).restarted).not.toContain(id);

    // The alert is for more than `alertThreshold` expiring (the schedule passes 10): at the count, no alert;
    // one under it, an alert, and the report's subject says so.
    const { rows } = await h.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM opsflow.subscriptions WHERE status = 'active'
         AND expires_at > now() AND expires_at <= now() + interval '1 day'`,
    );
    const expiring = rows[0]!.n;
    const sweepWith = async (alertThreshold: number, n: number) =>
      (await h.client.workflow.execute('subscriptionSweep', {
        taskQueue: h.queues.subscriptions,
        workflowId: `subscription-sweep:test:${id}:t${n}`,
        args: [{ windowMs: DAY, alertThreshold }],
      })) as { alert: boolean; expiringSoon: number };
    expect(await sweepWith(expiring, 3)).toMatchObject({ alert: false, expiringSoon: expiring });
    expect(await sweepWith(expiring - 1, 4)).toMatchObject({ alert: true, expiringSoon: expiring });
    const subjects = smtp.messages.filter((m) => m.subject?.includes('expiring within 24 h')).map((m) => m.subject!);
    expect(subjects.at(-2)).not.toMatch(/^\[ALERT\]/);
    expect(subjects.at(-1)).toMatch(/^\[ALERT\]/);
    const declared = declareSchedules(h.config, h.queues).find((d) => d.id === 'opsflow:subscription-sweep')!;
    expect(declared.args).toEqual([{ windowMs: DAY, alertThreshold: 10 }]);
    await h.client.workflow.getHandle(subscriptionWorkflowId('tenant-sweep', id)).terminate('test done');
  });

  it('the sweep lists running workflows through visibility: only rows without one get a start; a retry resumes', async () => {
    // 12 subscriptions through the API (each gets its workflow), then 3 of the workflows terminated.
    const tenant = `tenant-vis-${randomBytes(3).toString('hex')}`;
    const ids = Array.from({ length: 12 }, () => newId()).sort();
    for (const id of ids) {
      const res = await call('PUT', `/v1/subscriptions/${id}`, {
        tenantId: tenant,
        email: `${id}@example.com`,
        expiresAt: new Date(Date.now() + 20 * DAY).toISOString(),
      });
      expect(res.status).toBe(201);
    }
    const gone = [ids[2]!, ids[7]!, ids[11]!];
    for (const id of gone) await h.client.workflow.getHandle(subscriptionWorkflowId(tenant, id)).terminate('chaos');
    // Visibility catches up with the starts and terminations (it may lag a moment behind the server).
    await waitFor(
      async () => {
        const listed = new Set<string>();
        for await (const w of h.client.workflow.list({
          query: `WorkflowType = 'subscriptionLifecycle' AND ExecutionStatus = 'Running'`,
        }))
          listed.add(w.workflowId);
        return listed;
      },
      (listed) => ids.every((id) => listed.has(subscriptionWorkflowId(tenant, id)) === !gone.includes(id)),
      10_000,
    );
    const result = (await h.client.workflow.execute('subscriptionSweep', {
      taskQueue: h.queues.subscriptions,
      workflowId: `subscription-sweep:test:vis:${tenant}`,
      args: [{ windowMs: DAY }],
    })) as { restarted: string[]; checked: number };
    // Exactly the three (rows of other tests may be missing theirs too: only ours are counted here).
    expect(result.restarted.filter((id) => ids.includes(id)).sort()).toEqual([...gone].sort());
    for (const id of gone) {
      expect((await h.client.workflow.getHandle(subscriptionWorkflowId(tenant, id)).describe()).status.name).toBe(
        'RUNNING',
      );
    }
    // A retried sweep starts after the last row its heartbeat reported, keeping the counts it had.
    const env = new MockActivityEnvironment({
      heartbeatDetails: { after: { tenantId: '\uffff', id: '' }, checked: 41, restarted: ['from-before'] },
    });
    const activities = createSubscriptionActivities({ ...h, queues: h.queues });
    const resumed = await env.run(() => activities.sweep({ windowMs: DAY }));
    expect(resumed).toMatchObject({ checked: 41, restarted: ['from-before'] });
    for (const id of ids) await h.client.workflow.getHandle(subscriptionWorkflowId(tenant, id)).terminate('test done');
  });

  describe('bad input', () => {
    it('past expiry on create is 422 unless allowPastExpiry', async () => {
      const id = newId();
      const body = { tenantId: 't', email: `${id}@example.com`, expiresAt: inSeconds(-60) };
      const res = await call('PUT', `/v1/subscriptions/${id}`, body);
      expect(res.status).toBe(422);
      expect((await h.pool.query('SELECT 1 FROM opsflow.subscriptions WHERE id = $1', [id])).rowCount).toBe(0);
      const imported = await call('PUT', `/v1/subscriptions/${id}`, { ...body, allowPastExpiry: true });
      expect(imported.status).toBe(201);
      const result: unknown = await h.client.workflow.getHandle(subscriptionWorkflowId('t', id)).result();
      expect(result).toMatchObject({ status: 'expired' });
    });

    it.each([
      ['invalid time zone', { timezone: 'Mars/Base' }],
      ['bad email', { email: 'not-an-email' }],
      ['bad sendAt', { sendAt: '25:00' }],
      ['bad offsets', { reminderOffsets: ['soon'] }],
      ['missing tenant', { tenantId: undefined }],
    ])('%s is 400 and stores nothing', async (_name, override) => {
      const id = newId();
      const res = await call('PUT', `/v1/subscriptions/${id}`, {
        tenantId: 't',
        email: `${id}@example.com`,
        expiresAt: inSeconds(3600),
        ...override,
      });
      expect(res.status).toBe(400);
      expect((await h.pool.query('SELECT 1 FROM opsflow.subscriptions WHERE id = $1', [id])).rowCount).toBe(0);
    });

    it('unknown id is 404', async () => {
      expect((await call('GET', '/v1/subscriptions/nope-404')).status).toBe(404);
      expect((await call('POST', '/v1/subscriptions/nope-404/renew', { expiresAt: inSeconds(99) })).status).toBe(404);
      expect((await call('POST', '/v1/subscriptions/nope-404/cancel')).status).toBe(404);
    });

    it('lists from PostgreSQL with filters', async () => {
      // Rows of its own: a tenant with one subscription expiring within a day and one later, and another tenant's.
      const tenant = `tenant-list-${randomBytes(3).toString('hex')}`;
      const put = async (id: string, tenantId: string, hours: number) => {
        const res = await call('PUT', `/v1/subscriptions/${id}`, {
          tenantId,
          email: `${id}@example.com`,
          expiresAt: inSeconds(hours * 3600),
        });
        expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
      };
      const [soon, later, other] = [newId(), newId(), newId()];
      await put(soon, tenant, 12);
      await put(later, tenant, 24 * 10);
      await put(other, `${tenant}-other`, 12);
      const res = await call<{ items: { id: string; status: string; tenantId: string }[] }>(
        'GET',
        `/v1/subscriptions?tenantId=${tenant}&expiringWithin=1d`,
      );
      expect(res.status).toBe(200);
      expect(res.body.items.map((s) => s.id)).toEqual([soon]);
      const all = await call<{ items: { id: string }[] }>('GET', `/v1/subscriptions?tenantId=${tenant}`);
      expect(all.body.items.map((s) => s.id).sort()).toEqual([soon, later].sort());
      expect((await call('GET', '/v1/subscriptions?expiringWithin=later')).status).toBe(400);
      expect((await call('GET', '/v1/subscriptions?status=zombie')).status).toBe(400);
    });
  });
});
