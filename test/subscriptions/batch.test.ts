/**
 * Bulk import (POST /v1/subscriptions:batch) on a real Temporal server and PostgreSQL: per-item results, rows in
 * one transaction, workflows started after the answer, idempotent retries, and the subscription reconciler
 * starting what a refused start left behind. A state database of this file's own, so the reconciler only ever
 * sees this file's rows.
 */
import { randomBytes } from 'node:crypto';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, migrate } from '../../lib/db.js';
import { fairLimiter } from '../../lib/bulk-starts.js';
import { startSubscriptionReconciler } from '../../worker/reconciler.js';
import { insertSubscriptionRows } from '../../lib/subscriptions/rows.js';
import { startSubscriptionRows } from '../../lib/subscriptions/start.js';
import { subscriptionWorkflowId } from '../../lib/subscriptions/contract.js';
import { databaseUrlOf, dropDatabase, recreateDatabase } from '../helpers/databases.js';
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

const stateDb = `opsflow_import_${process.pid}`;
const headers = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };

interface BatchAnswer {
  created: number;
  unchanged: number;
  rejected: number;
  workflowsStarting: number;
  results: { index: number; id: string | null; outcome: string; error?: { code: string; message: string } }[];
  error?: { code: string; message: string };
}

describe('subscription bulk import', () => {
  let h: Harness;
  let workers: TestWorkers;
  let smtp: SmtpCapture;

  beforeAll(async () => {
    await recreateDatabase(stateDb);
    const pool = createPool(databaseUrlOf(stateDb), 2);
    await migrate(pool);
    await pool.end();
    smtp = await startSmtpCapture();
    h = await createHarness({ DATABASE_URL: databaseUrlOf(stateDb), SMTP_URL: smtp.url });
    workers = await startWorkers(h, ['subscriptions', 'webhooks']);
  });
  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await smtp?.close();
    await dropDatabase(stateDb);
  });

  const inHours = (n: number) => new Date(Date.now() + n * 3600_000).toISOString();
  const prefix = () => `imp-${randomBytes(3).toString('hex')}`;
  async function batch(items: unknown, app = testApp(h)): Promise<{ status: number; body: BatchAnswer }> {
    const res = await app.request('/v1/subscriptions:batch', {
      method: 'POST',
      headers,
      body: JSON.stringify({ items }),
    });
    return { status: res.status, body: (await res.json()) as BatchAnswer };
  }
  const item = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    tenantId: 'tenant-import',
    email: `${id}@example.com`,
    expiresAt: inHours(24 * 30),
    ...extra,
  });
  const rowsOf = (ids: string[]) =>
    h.pool
      .query<{ id: string; status: string; started: boolean }>(
        `SELECT id, status, workflow_started_at IS NOT NULL AS started FROM opsflow.subscriptions
         WHERE id = ANY ($1) ORDER BY id`,
        [ids],
      )
      .then((q) => q.rows);
  const auditCount = (ids: string[]) =>
    h.pool
      .query<{ n: number }>(
        `SELECT count(*)::int AS n FROM opsflow.subscription_audit WHERE subscription_id = ANY ($1)`,
        [ids],
      )
      .then((q) => q.rows[0]!.n);
  const allStarted = (ids: string[]) =>
    waitFor(
      () => rowsOf(ids),
      (rows) => rows.length === ids.length && rows.every((r) => r.started),
      30_000,
    );

  it('writes the valid items, answers one result per item, then starts their workflows', async () => {
    const p = prefix();
    const ids = [`${p}-a`, `${p}-b`, `${p}-c`];
    const items = [
      item(ids[0]!, { plan: 'pro', reminderOffsets: ['7d', '1d'], timezone: 'Europe/Berlin' }),
      item(`${p}-bad`, { email: 'not-an-email' }),
      item(ids[1]!),
      item(ids[1]!, { plan: 'dup' }), // the same id twice in one batch
      item(`${p}-past`, { expiresAt: inHours(-1) }), // past without allowPastExpiry
      item(ids[2]!, { expiresAt: inHours(-1), allowPastExpiry: true }), // an import of an expired one
      { tenantId: 'x' }, // no id at all
    ];
    const { status, body } = await batch(items);
    expect(status).toBe(200);
    expect(body).toMatchObject({ created: 3, unchanged: 0, rejected: 4, workflowsStarting: 3 });
    expect(body.results.map((r) => [r.index, r.outcome, r.error?.code])).toEqual([
      [0, 'created', undefined],
      [1, 'rejected', 'validation_failed'],
      [2, 'created', undefined],
      [3, 'rejected', 'validation_failed'],
      [4, 'rejected', 'unprocessable'],
      [5, 'created', undefined],
      [6, 'rejected', 'validation_failed'],
    ]);
    expect(body.results[1]!.error!.message).toMatch(/^email: /);
    expect(body.results[3]!.error!.message).toBe('id also at index 2 of this batch');
    expect(body.results[6]!.id).toBeNull();
    // Nothing of a rejected item is stored.
    expect(await rowsOf([`${p}-bad`, `${p}-past`])).toEqual([]);
    expect(await auditCount(ids)).toBe(3);

    await allStarted(ids);
    // The workflows run with the imported details: a reminder planned for the future one, the past one expired.
    const view = await h.client.workflow.getHandle(subscriptionWorkflowId('tenant-import', ids[0]!)).query('view');
    expect(view).toMatchObject({
      status: 'active',
      details: { plan: 'pro', timezone: 'Europe/Berlin', reminderOffsetsMs: [7 * 86_400_000, 86_400_000] },
      nextAction: { kind: 'reminder', milestone: '7d' },
    });
    const expired: unknown = await h.client.workflow
      .getHandle(subscriptionWorkflowId('tenant-import', ids[2]!))
      .result();
    expect(expired).toMatchObject({ status: 'expired' });
    expect((await rowsOf([ids[2]!]))[0]!.status).toBe('expired');
  });

  it('is idempotent by id: a retried batch is unchanged, a different item for an existing id is a conflict', async () => {
    const p = prefix();
    const items = [item(`${p}-a`), item(`${p}-b`, { graceDays: 2 })];
    expect((await batch(items)).body).toMatchObject({ created: 2, rejected: 0 });
    await allStarted([`${p}-a`, `${p}-b`]);
    const runs = async () =>
      Promise.all(
        [`${p}-a`, `${p}-b`].map(
          async (id) =>
            (await h.client.workflow.getHandle(subscriptionWorkflowId('tenant-import', id)).describe()).runId,
        ),
      );
    const before = await runs();

    const again = await batch(items);
    expect(again.body).toMatchObject({ created: 0, unchanged: 2, rejected: 0, workflowsStarting: 0 });
    const changed = await batch([items[0], { ...items[1], email: `changed-${p}@example.com` }]);
    expect(changed.body).toMatchObject({ created: 0, unchanged: 1, rejected: 1 });
    expect(changed.body.results[1]!.error).toMatchObject({ code: 'conflict' });
    expect(changed.body.results[1]!.error!.message).toContain(`PUT /v1/subscriptions/${p}-b`);
    // Same workflows, one audit entry each, the stored email untouched.
    expect(await runs()).toEqual(before);
    expect(await auditCount([`${p}-a`, `${p}-b`])).toBe(2);
    const { rows } = await h.pool.query('SELECT email FROM opsflow.subscriptions WHERE id = $1', [`${p}-b`]);
    expect(rows[0]).toEqual({ email: `${p}-b@example.com` });
  });

  it('rows whose starts Temporal refused are started by the reconciler, once; a finished workflow is not run again', async () => {
    const p = prefix();
    const ids = [`${p}-a`, `${p}-b`, `${p}-c`];
    // The same server, a namespace it does not have: every start is refused, the way an outage refuses it.
    const refusing = new Client({ connection: h.client.connection, namespace: `missing-${p}` });
    const items = ids.map((id) => item(id));
    const res = await batch(items, testApp(h, { temporal: refusing }));
    expect(res.body).toMatchObject({ created: 3, workflowsStarting: 3 });
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the background starts have failed by now
    expect((await rowsOf(ids)).map((r) => r.started)).toEqual([false, false, false]);
    await expect(
      h.client.workflow.getHandle(subscriptionWorkflowId('tenant-import', ids[0]!)).describe(),
    ).rejects.toThrow(WorkflowNotFoundError);

    // A retried batch (after a crash, say) starts what is still unstarted: here through the refusing client
    // again, so the rows stay for the reconciler.
    const retried = await batch(items, testApp(h, { temporal: refusing }));
    expect(retried.body).toMatchObject({ created: 0, unchanged: 3, workflowsStarting: 3 });

    // An imported subscription that expired and finished: its row is (wrongly) unstarted, the reconciler must
    // not expire it a second time.
    const done = `${p}-done`;
    expect((await batch([item(done, { expiresAt: inHours(-1), allowPastExpiry: true })])).body.created).toBe(1);
    await allStarted([done]); // started after the answer
    const finished: unknown = await h.client.workflow.getHandle(subscriptionWorkflowId('tenant-import', done)).result();
    expect(finished).toMatchObject({ status: 'expired' });
    await h.pool.query('UPDATE opsflow.subscriptions SET workflow_started_at = NULL WHERE id = $1', [done]);
    const mailsBefore = smtp.messages.filter((m) => JSON.stringify(m.to).includes(done)).length;

    const reconciler = startSubscriptionReconciler(
      { pool: h.pool, client: h.client, taskQueue: h.queues.subscriptions, concurrency: 4, priority: 4 },
      h.log,
      { intervalMs: 200, olderThanMs: 0, batch: 100 },
    );
    try {
      await allStarted([...ids, done]);
      await new Promise((resolve) => setTimeout(resolve, 600)); // more rounds: nothing started twice
    } finally {
      await reconciler.stop();
    }
    for (const id of ids) {
      const desc = await h.client.workflow.getHandle(subscriptionWorkflowId('tenant-import', id)).describe();
      expect(desc.status.name).toBe('RUNNING');
    }
    const doneRuns = [];
    for await (const w of h.client.workflow.list({
      query: `WorkflowId = '${subscriptionWorkflowId('tenant-import', done)}'`,
    })) {
      doneRuns.push(w.runId);
    }
    expect(doneRuns).toHaveLength(1);
    expect(smtp.messages.filter((m) => JSON.stringify(m.to).includes(done)).length).toBe(mailsBefore);
  });

  it("an import's starts sent after the answer are not held to the request's deadline", async () => {
    const p = prefix();
    const rows = await insertSubscriptionRows(
      h.pool,
      [0, 1, 2].map((i) => ({
        id: `${p}-${i}`,
        details: {
          tenantId: 't',
          email: `${p}-${i}@example.com`,
          name: null,
          plan: null,
          expiresAt: inHours(48),
          timezone: 'UTC',
          reminderOffsetsMs: [86_400_000],
          sendAt: null,
          graceDays: 0,
        },
      })),
    );
    // As in an API request (api/temporal-budget.ts): the starts are queued under the request's deadline, here
    // 300 ms, behind the process's bulk limiter busy with other work for a second — so they are sent after it.
    const limiter = fairLimiter(1);
    const started = await h.client.connection.withDeadline(Date.now() + 300, async () => {
      void limiter.lane()(() => new Promise((r) => setTimeout(r, 1000)));
      return startSubscriptionRows(
        { pool: h.pool, client: h.client, taskQueue: h.queues.subscriptions, concurrency: limiter, priority: 4 },
        rows,
      );
    });
    expect(started.error).toBeUndefined();
    expect(started).toMatchObject({ started: 3, failed: 0 });
    expect((await rowsOf(rows.map((r) => r.id))).map((r) => r.started)).toEqual([true, true, true]);
  });

  it('a PUT whose start never happened is left for the reconciler, not lost', async () => {
    const id = `${prefix()}-put`;
    const refusing = new Client({ connection: h.client.connection, namespace: `missing-${id}` });
    const res = await testApp(h, { temporal: refusing }).request(`/v1/subscriptions/${id}`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ tenantId: 't', email: `${id}@example.com`, expiresAt: inHours(48) }),
    });
    expect(res.status).toBeGreaterThanOrEqual(500); // Temporal refused: the caller is told it failed
    expect(await rowsOf([id])).toEqual([{ id, status: 'active', started: false }]);
    const reconciler = startSubscriptionReconciler(
      { pool: h.pool, client: h.client, taskQueue: h.queues.subscriptions, concurrency: 4, priority: 4 },
      h.log,
      { intervalMs: 200, olderThanMs: 0, batch: 100 },
    );
    try {
      await allStarted([id]);
    } finally {
      await reconciler.stop();
    }
    expect((await h.client.workflow.getHandle(subscriptionWorkflowId('t', id)).describe()).status.name).toBe('RUNNING');
  });

  it('a PUT that creates answers without waiting for a worker; concurrent creates of one id make one workflow', async () => {
    const id = `${prefix()}-fast`;
    // A task queue no worker polls: an update would wait for one, a start does not.
    const idle = testApp(h, { queues: { ...h.queues, subscriptions: `nobody-${id}` } });
    const body = { tenantId: 't', email: `${id}@example.com`, expiresAt: inHours(48), reminderOffsets: ['1d'] };
    const t0 = performance.now();
    const res = await idle.request(`/v1/subscriptions/${id}`, { method: 'PUT', headers, body: JSON.stringify(body) });
    expect(res.status).toBe(201);
    expect(performance.now() - t0).toBeLessThan(3000);
    const view = (await res.json()) as { status: string; nextAction: { kind: string; milestone: string; at: string } };
    // The same answer the workflow gives, computed from the same plan.
    expect(view).toMatchObject({ status: 'active', nextAction: { kind: 'reminder', milestone: '1d' } });
    // sendAt defaults to 09:00 local: the reminder is on the day before expiry.
    expect(Date.parse(view.nextAction.at)).toBeLessThan(Date.parse(body.expiresAt));
    const desc = await h.client.workflow.getHandle(subscriptionWorkflowId('t', id)).describe();
    expect(desc.status.name).toBe('RUNNING');
    expect(await rowsOf([id])).toEqual([{ id, status: 'active', started: true }]);

    // Two creates of one new id at once: one workflow, both answered, the workflow holds one of the two.
    const twin = `${prefix()}-twin`;
    const app = testApp(h);
    const answers = await Promise.all(
      ['a', 'b'].map(async (plan) =>
        app.request(`/v1/subscriptions/${twin}`, {
          method: 'PUT',
          headers,
          body: JSON.stringify({ ...body, email: `${twin}@example.com`, plan }),
        }),
      ),
    );
    for (const r of answers) expect([200, 201]).toContain(r.status);
    const runs = [];
    for await (const w of h.client.workflow.list({ query: `WorkflowId = '${subscriptionWorkflowId('t', twin)}'` })) {
      runs.push(w.runId);
    }
    expect(runs).toHaveLength(1);
    const held = await h.client.workflow
      .getHandle(subscriptionWorkflowId('t', twin))
      .query<{ details: { plan: string } }>('view');
    expect(['a', 'b']).toContain(held.details.plan);
  });

  it('a PUT that changes a subscription answers without waiting for a worker: its change is stored in Temporal', async () => {
    const id = `${prefix()}-change`;
    // A task queue no worker polls: an update would wait out the API's Temporal budget (503); a signal does not.
    const idle = testApp(h, { queues: { ...h.queues, subscriptions: `nobody-${id}` } });
    const body = { tenantId: 't', email: `${id}@example.com`, expiresAt: inHours(48), reminderOffsets: ['1d'] };
    const put = (b: object) =>
      idle.request(`/v1/subscriptions/${id}`, { method: 'PUT', headers, body: JSON.stringify(b) });
    expect((await put(body)).status).toBe(201);
    const changes = [
      { ...body, name: 'Renamed' },
      { ...body, name: 'Renamed', expiresAt: inHours(72) },
    ];
    for (const change of changes) {
      const t0 = performance.now();
      const res = await put(change);
      expect(res.status).toBe(200);
      expect(performance.now() - t0).toBeLessThan(3000);
      const view = (await res.json()) as { status: string; details: { name: string; expiresAt: string } };
      expect(view).toMatchObject({ status: 'active', details: { name: 'Renamed', expiresAt: change.expiresAt } });
    }
    const handle = h.client.workflow.getHandle(subscriptionWorkflowId('t', id));
    const { events } = await handle.fetchHistory();
    const signalled = (events ?? []).flatMap((e) => {
      const a = e.workflowExecutionSignaledEventAttributes;
      return a?.signalName === 'changeDetails' ? [a] : [];
    });
    expect(signalled).toHaveLength(2);
    expect(await rowsOf([id])).toEqual([{ id, status: 'active', started: true }]);
    await handle.terminate('test done');
  });

  it('refuses a malformed batch as a whole with the error envelope and stores nothing', async () => {
    const p = prefix();
    const cases: unknown[] = [[], Array.from({ length: 1001 }, (_, i) => item(`${p}-${i}`)), 'not-a-list'];
    for (const items of cases) {
      const { status, body } = await batch(items);
      expect(status).toBe(400);
      expect(body.error?.code).toBe('validation_failed');
    }
    const extra = await testApp(h).request('/v1/subscriptions:batch', {
      method: 'POST',
      headers,
      body: JSON.stringify({ items: [item(`${p}-x`)], dryRun: true }),
    });
    expect(extra.status).toBe(400);
    const readOnly = await testApp(h).request('/v1/subscriptions:batch', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items: [item(`${p}-y`)] }),
    });
    expect(readOnly.status).toBe(401);
    expect(
      (await h.pool.query(`SELECT count(*)::int AS n FROM opsflow.subscriptions WHERE id LIKE $1`, [`${p}-%`])).rows[0],
    ).toEqual({ n: 0 });
  });
});
