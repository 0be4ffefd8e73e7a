/**
 * Trust: subscription ids are per tenant, so a tenant key learns nothing of another tenant's ids. Two tenants'
 * keys each make "their" subscription with one id — both are created, each sees and changes only its own, and
 * each has its own workflow (`subscription:<tenant>/<id>`). An operator's key naming no tenant reaches an id
 * only one tenant has, and is asked to name the tenant (409) when several have it. Subscriptions made before ids
 * were per tenant keep the workflow they run (`subscription:<id>`): the migration marks them, and a PUT, a renew
 * and a cancel reach that workflow. Real API, PostgreSQL, Temporal and a subscriptions worker.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, defaultMigrationsDir, migrate } from '../../lib/db.js';
import { subscriptionWorkflowId } from '../../lib/subscriptions/contract.js';
import { subscriptionStart } from '../../lib/subscriptions/start.js';
import { apiCaller } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase, recreateDatabase } from '../helpers/databases.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';

const DAY = 86_400_000;
const future = (days: number) => new Date(Date.now() + days * DAY).toISOString();

interface View {
  subscriptionId: string;
  status: string;
  details: { tenantId: string; email: string; expiresAt: string };
  error?: { code: string; message: string };
}

describe('security: subscription ids are per tenant', () => {
  const db = `opsflow_sec_ids_${process.pid}`;
  let h: Harness;
  let workers: TestWorkers;
  const operator = () => apiCaller(() => testApp(h));
  const keys: Record<string, ReturnType<typeof apiCaller>> = {};
  const suffix = randomBytes(3).toString('hex');
  const tenants = { a: `ids-a-${suffix}`, b: `ids-b-${suffix}`, slash: `ids/eu ${suffix}` };
  const started: string[] = [];

  beforeAll(async () => {
    // A database of this file's own: the list is paged through whole.
    await freshStateDatabase(db);
    h = await createHarness({ DATABASE_URL: databaseUrlOf(db) });
    workers = await startWorkers(h, ['subscriptions']);
    for (const [name, tenantId] of Object.entries(tenants)) {
      const key = await operator()<{ key: string }>('POST', '/v1/api-keys', {
        name: `ids-${name}`,
        scopes: ['read', 'subscriptions:write'],
        tenantId,
      });
      expect(key.status).toBe(201);
      keys[name] = apiCaller(() => testApp(h), key.body.key);
    }
  });
  afterAll(async () => {
    for (const id of started)
      await h.client.workflow
        .getHandle(id)
        .terminate('test done')
        .catch(() => undefined);
    await workers?.stop();
    await h?.close();
    await dropDatabase(db);
  });

  it("two tenants' keys each make their own subscription with one id; neither sees or changes the other's", async () => {
    const id = `shared-${suffix}`;
    const a = await keys.a!<View>('PUT', `/v1/subscriptions/${id}`, {
      tenantId: tenants.a,
      email: 'a@example.com',
      expiresAt: future(30),
    });
    expect(a.status).toBe(201);
    // Once answered 404 ("not found", for an id that was taken): now simply B's own new subscription.
    const b = await keys.b!<View>('PUT', `/v1/subscriptions/${id}`, {
      tenantId: tenants.b,
      email: 'b@example.com',
      expiresAt: future(40),
    });
    expect(b.status).toBe(201);
    expect(b.body.details.email).toBe('b@example.com');
    started.push(subscriptionWorkflowId(tenants.a, id), subscriptionWorkflowId(tenants.b, id));

    // Each workflow holds its own tenant's details.
    for (const [tenant, email] of [
      [tenants.a, 'a@example.com'],
      [tenants.b, 'b@example.com'],
    ] as const) {
      const view = await h.client.workflow.getHandle(subscriptionWorkflowId(tenant, id)).query<View>('view');
      expect(view.details).toMatchObject({ tenantId: tenant, email });
    }

    // B's renew and cancel reach B's; A's is as it was.
    const renewed = await keys.b!<View>('POST', `/v1/subscriptions/${id}/renew`, { expiresAt: future(50) });
    expect(renewed.status).toBe(200);
    const canceled = await keys.b!<View>('POST', `/v1/subscriptions/${id}/cancel`, { reason: 'churned' });
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe('canceled');
    const aNow = await keys.a!<View>('GET', `/v1/subscriptions/${id}`);
    expect(aNow.status).toBe(200);
    expect(aNow.body).toMatchObject({ status: 'active', details: { tenantId: tenants.a, email: 'a@example.com' } });
    expect(Date.parse(aNow.body.details.expiresAt)).toBe(Date.parse(a.body.details.expiresAt));
    // A's list holds A's only; naming B's tenant is refused.
    const listed = await keys.a!<{ items: { id: string; tenantId: string }[] }>('GET', '/v1/subscriptions');
    expect(listed.body.items.filter((s) => s.id === id).map((s) => s.tenantId)).toEqual([tenants.a]);
    expect((await keys.a!('GET', `/v1/subscriptions/${id}?tenantId=${tenants.b}`)).status).toBe(403);

    // A batch of B's with the id: B's own (unchanged when equal), never "taken".
    const batch = await keys.b!<{ results: { outcome: string; error?: { code: string } }[] }>(
      'POST',
      '/v1/subscriptions:batch',
      { items: [{ id: `batch-${suffix}`, tenantId: tenants.b, email: 'b@example.com', expiresAt: future(30) }] },
    );
    const batchA = await keys.a!<{ results: { outcome: string; error?: { code: string } }[] }>(
      'POST',
      '/v1/subscriptions:batch',
      { items: [{ id: `batch-${suffix}`, tenantId: tenants.a, email: 'a@example.com', expiresAt: future(30) }] },
    );
    expect([batch.body.results[0]!.outcome, batchA.body.results[0]!.outcome]).toEqual(['created', 'created']);
    started.push(
      subscriptionWorkflowId(tenants.a, `batch-${suffix}`),
      subscriptionWorkflowId(tenants.b, `batch-${suffix}`),
    );
  });

  it('an operator naming no tenant reaches an id one tenant has, and must name the tenant when several have it', async () => {
    const id = `op-${suffix}`;
    const expiresAt = future(30);
    for (const tenant of [tenants.a, tenants.b]) {
      const put = await operator()('PUT', `/v1/subscriptions/${id}`, {
        tenantId: tenant,
        email: `${tenant}@example.com`,
        expiresAt,
      });
      expect(put.status).toBe(201);
      started.push(subscriptionWorkflowId(tenant, id));
    }
    const ambiguous = await operator()<View>('GET', `/v1/subscriptions/${id}`);
    expect(ambiguous.status).toBe(409);
    expect(ambiguous.body.error?.message).toContain(`${tenants.a}, ${tenants.b}`);
    expect(ambiguous.body.error?.message).toContain('?tenantId=');
    // The same for a change: nothing is renewed without a tenant.
    expect((await operator()('POST', `/v1/subscriptions/${id}/renew`, { expiresAt: future(60) })).status).toBe(409);
    const named = await operator()<View>('GET', `/v1/subscriptions/${id}?tenantId=${tenants.b}`);
    expect(named.status).toBe(200);
    expect(named.body.details.tenantId).toBe(tenants.b);
    const renewed = await operator()<View>('POST', `/v1/subscriptions/${id}/renew?tenantId=${tenants.a}`, {
      expiresAt: future(60),
    });
    expect(renewed.status).toBe(200);
    expect(renewed.body.details.tenantId).toBe(tenants.a);
    expect((await operator()('GET', `/v1/subscriptions/${id}?tenantId=nobody-${suffix}`)).status).toBe(404);

    // An id only one tenant has needs no tenant.
    const single = `single-${suffix}`;
    expect(
      (
        await operator()('PUT', `/v1/subscriptions/${single}`, {
          tenantId: tenants.a,
          email: 'x@example.com',
          expiresAt: future(9),
        })
      ).status,
    ).toBe(201);
    started.push(subscriptionWorkflowId(tenants.a, single));
    expect((await operator()<View>('GET', `/v1/subscriptions/${single}`)).body.details.tenantId).toBe(tenants.a);

    // The list pages through two tenants' subscriptions of one id and one expiry without losing either (B's
    // is still at the first expiry: A's was renewed).
    const twin = `twin-${suffix}`;
    for (const tenant of [tenants.a, tenants.b]) {
      const put = await operator()('PUT', `/v1/subscriptions/${twin}`, {
        tenantId: tenant,
        email: 't@example.com',
        expiresAt,
      });
      expect(put.status).toBe(201);
      started.push(subscriptionWorkflowId(tenant, twin));
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/v1/subscriptions?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await operator()<{ items: { id: string; tenantId: string }[]; nextCursor: string | null }>('GET', q);
      seen.push(...page.body.items.filter((s) => s.id === twin).map((s) => s.tenantId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual([tenants.a, tenants.b].sort());
  });

  it('a tenant of any name gets a workflow id of its own: subscription:<tenant, URI-encoded>/<id>', async () => {
    const id = `odd-${suffix}`;
    const put = await keys.slash!<View>('PUT', `/v1/subscriptions/${id}`, {
      tenantId: tenants.slash,
      email: 's@example.com',
      expiresAt: future(30),
    });
    expect(put.status).toBe(201);
    const workflowId = `subscription:${encodeURIComponent(tenants.slash)}/${id}`;
    started.push(workflowId);
    expect(subscriptionWorkflowId(tenants.slash, id)).toBe(workflowId);
    expect((await h.client.workflow.getHandle(workflowId).describe()).status.name).toBe('RUNNING');
  });

  it('a subscription made before ids were per tenant keeps its workflow: PUT, renew and cancel reach it', async () => {
    const id = `legacy-${suffix}`;
    const tenant = tenants.a;
    const details = {
      tenantId: tenant,
      email: 'old@example.com',
      name: null,
      plan: null,
      expiresAt: future(20),
      timezone: 'UTC',
      reminderOffsetsMs: [7 * DAY],
      sendAt: null,
      graceDays: 0,
    };
    // As an earlier release left it: the row (marked by the migration) and a workflow named subscription:<id>.
    await h.pool.query(
      `INSERT INTO opsflow.subscriptions (id, tenant_id, email, expires_at, timezone, reminder_offsets_ms, workflow_started_at, legacy_workflow_id)
       VALUES ($1, $2, $3, $4, 'UTC', $5, now(), true)`,
      [id, tenant, details.email, details.expiresAt, details.reminderOffsetsMs],
    );
    const { workflowType, options } = subscriptionStart(id, details, 'active', h.queues.subscriptions);
    const legacyId = `subscription:${id}`;
    await h.client.workflow.start(workflowType, {
      ...options,
      workflowId: legacyId,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    });
    started.push(legacyId, subscriptionWorkflowId(tenant, id));

    const put = await keys.a!<View>('PUT', `/v1/subscriptions/${id}`, {
      tenantId: tenant,
      email: 'new@example.com',
      expiresAt: details.expiresAt,
      reminderOffsets: ['7d'],
    });
    expect(put.status).toBe(200);
    expect((await h.client.workflow.getHandle(legacyId).query<View>('view')).details.email).toBe('new@example.com');
    expect((await keys.a!<View>('POST', `/v1/subscriptions/${id}/renew`, { expiresAt: future(45) })).status).toBe(200);
    expect((await keys.a!<View>('GET', `/v1/subscriptions/${id}`)).body.details.email).toBe('new@example.com');
    expect((await keys.a!<View>('POST', `/v1/subscriptions/${id}/cancel`, {})).body.status).toBe('canceled');
    expect((await h.client.workflow.getHandle(legacyId).query<View>('view')).status).toBe('canceled');
    // No second workflow was made under the new name.
    await expect(h.client.workflow.getHandle(subscriptionWorkflowId(tenant, id)).describe()).rejects.toThrow(
      /not found/i,
    );
  });
});

describe('migration 038 on subscriptions made before it', () => {
  const db = `opsflow_ids_migration_${process.pid}`;
  let dir: string;
  afterAll(async () => {
    await dropDatabase(db);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('marks every existing subscription legacy and gives its notifications and audit rows their tenant', async () => {
    await recreateDatabase(db);
    const pool = createPool(databaseUrlOf(db), 2);
    try {
      // The schema as the release before left it: every migration up to 037.
      dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-migrations-'));
      const all = (await readdir(defaultMigrationsDir())).filter((f) => f.endsWith('.sql')).sort();
      for (const f of all.filter((f) => f < '038')) await cp(path.join(defaultMigrationsDir(), f), path.join(dir, f));
      await migrate(pool, undefined, dir);
      await pool.query(
        `INSERT INTO opsflow.subscriptions (id, tenant_id, email, expires_at, timezone, reminder_offsets_ms)
         VALUES ('sub_1', 'acme', 'a@example.com', now() + interval '9 days', 'UTC', '{604800000}')`,
      );
      await pool.query(
        `INSERT INTO opsflow.subscription_notifications (subscription_id, expires_at, milestone, urgency)
         SELECT id, expires_at, '7d', 'medium' FROM opsflow.subscriptions`,
      );
      await pool.query(`INSERT INTO opsflow.subscription_audit (subscription_id, action) VALUES ('sub_1', 'created')`);

      const { applied } = await migrate(pool);
      expect(applied).toEqual(all.filter((f) => f >= '038'));
      expect((await pool.query('SELECT tenant_id, id, legacy_workflow_id FROM opsflow.subscriptions')).rows).toEqual([
        { tenant_id: 'acme', id: 'sub_1', legacy_workflow_id: true },
      ]);
      expect((await pool.query('SELECT tenant_id FROM opsflow.subscription_notifications')).rows).toEqual([
        { tenant_id: 'acme' },
      ]);
      expect((await pool.query('SELECT tenant_id FROM opsflow.subscription_audit')).rows).toEqual([
        { tenant_id: 'acme' },
      ]);
      // Another tenant may now use the id; a new row is not legacy; a notification needs its subscription.
      await pool.query(
        `INSERT INTO opsflow.subscriptions (id, tenant_id, email, expires_at, timezone, reminder_offsets_ms)
         VALUES ('sub_1', 'globex', 'g@example.com', now() + interval '9 days', 'UTC', '{}')`,
      );
      expect(
        (await pool.query(`SELECT legacy_workflow_id FROM opsflow.subscriptions WHERE tenant_id = 'globex'`)).rows,
      ).toEqual([{ legacy_workflow_id: false }]);
      await expect(
        pool.query(
          `INSERT INTO opsflow.subscription_notifications (tenant_id, subscription_id, expires_at, milestone, urgency)
           VALUES ('initech', 'sub_1', now(), '7d', 'medium')`,
        ),
      ).rejects.toThrow(/foreign key/);
    } finally {
      await pool.end();
    }
  });
});
