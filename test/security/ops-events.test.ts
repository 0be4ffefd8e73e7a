/**
 * Trust: opsflow's own alerts cannot be faked, resolved or suppressed by a caller holding a publisher key. A
 * caller's event in a reserved namespace is refused (403, nothing stored); a caller's idempotency key cannot
 * take the key a real ops event is published under. Real API (app.request), real PostgreSQL (a database of this
 * file's own), real Temporal (the shared dev server).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPS_EVENTS } from '../../lib/webhooks/formats.js';
import { isReservedEventType, publishOpsEvent } from '../../lib/webhooks/ops-events.js';
import { webhookServiceDeps } from '../../lib/webhooks/service.js';
import { apiCaller } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, testApp, type Harness } from '../helpers/harness.js';

const db = `opsflow_sec_ops_${process.pid}`;

describe('security: ops events are opsflow’s', () => {
  let h: Harness;
  let api: ReturnType<typeof apiCaller>;
  const eventCount = async (type: string) =>
    Number(
      (await h.pool.query<{ n: string }>('SELECT count(*) AS n FROM opsflow.webhook_events WHERE type = $1', [type]))
        .rows[0]!.n,
    );

  beforeAll(async () => {
    await freshStateDatabase(db);
    h = await createHarness({ DATABASE_URL: databaseUrlOf(db), WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    api = apiCaller(testApp(h));
    // An operator's PagerDuty-like catch-all endpoint: what a faked ops event would reach.
    const ep = await api('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/hook' });
    expect(ep.status).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
    await dropDatabase(db);
  });

  it('every event type opsflow publishes itself is in a reserved namespace', () => {
    for (const type of [...OPS_EVENTS, 'subscription.grace', 'subscription.expired', 'opsflow.anything']) {
      expect(isReservedEventType(type), type).toBe(true);
    }
    for (const type of ['invoice.paid', 'backups.custom', 'deployment.done', 'user.subscription.created']) {
      expect(isReservedEventType(type), type).toBe(false);
    }
  });

  it('a caller cannot publish an ops event: a fake backup.verified (which would resolve the real incident) is 403 and stores nothing', async () => {
    for (const type of [
      'backup.verified',
      'backup.failed',
      'deploy.rolled_back',
      'subscription.grace',
      'opsflow.future',
    ]) {
      const res = await api<{ error: { code: string; message: string } }>('POST', '/v1/events', {
        type,
        payload: { database: 'orders' },
      });
      expect(res.status, type).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
      expect(res.body.error.message).toMatch(/reserved/);
      expect(await eventCount(type), type).toBe(0);
    }
  });

  it('a caller cannot use opsflow’s idempotency namespace', async () => {
    const res = await api<{ error: { code: string; message: string } }>('POST', '/v1/events', {
      type: 'invoice.paid',
      payload: {},
      idempotencyKey: 'opsflow:backup.stale:orders:first',
    });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toMatch(/idempotency keys starting with opsflow:/);
    expect(await eventCount('invoice.paid')).toBe(0);
  });

  it('a caller’s key cannot suppress the real ops event published under the same words', async () => {
    // What the backup freshness check publishes its first stale page under, taken first by a caller.
    const key = 'backup.stale:orders:first';
    const taken = await api('POST', '/v1/events', { type: 'orders.note', payload: {}, idempotencyKey: key });
    expect(taken.status).toBe(202);
    const deps = webhookServiceDeps(h.config, h.pool, h.client, h.queues);
    const real = await publishOpsEvent(deps, 'backup.stale', { database: 'orders', ageHours: 30 }, key);
    expect(real.created).toBe(true);
    expect(await eventCount('backup.stale')).toBe(1);
    expect(real.deliveries).toHaveLength(1); // the operator's endpoint gets the real page
    // Once: a retried activity publishes it again under the same key, and nothing new is made.
    const again = await publishOpsEvent(deps, 'backup.stale', { database: 'orders', ageHours: 30 }, key);
    expect(again).toMatchObject({ created: false, eventId: real.eventId });
  });

  it('events outside the reserved namespaces are published as before', async () => {
    const res = await api<{ eventId: string }>('POST', '/v1/events', { type: 'invoice.paid', payload: { id: 'in_1' } });
    expect(res.status).toBe(202);
    expect(await eventCount('invoice.paid')).toBe(1);
  });
});
