/**
 * Bulk work goes behind interactive work: the workflows a large fan-out, a redrive, a recover and a batch import
 * start carry the bulk task priority (BULK_TASK_PRIORITY, default 4), the ones a single publish, a single retry
 * and a single PUT start do not (the default, 3) — read back from the real Temporal dev server. And the server
 * dispatches by it: with the webhooks worker down, a 30-endpoint fan-out is queued and then one small publish;
 * a worker with two task slots comes up, and the small publish arrives among the first — where, with
 * BULK_TASK_PRIORITY=3 (no separation), it waits behind the fan-out's backlog. That part runs on a dev server of
 * its own with one task queue partition (the default four would each keep their own order, and which one a poll
 * reaches is random). Real API, PostgreSQL, receivers.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startDevServer, type DevServer } from '../../scripts/dev-server.js';
import { freePort } from '../global-setup.js';
import { apiCaller } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { startReceiver, type Receiver } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const db = `opsflow_priority_${process.pid}`;
const FAN = 30;

describe('bulk work at a lower task priority', () => {
  let receiver: Receiver;
  let ownServer: DevServer | undefined;
  const harnesses: Harness[] = [];
  const running: TestWorkers[] = [];

  beforeAll(async () => {
    await freshStateDatabase(db);
    receiver = await startReceiver((_r, res) => {
      res.writeHead(200).end('ok');
    });
  });
  afterAll(async () => {
    for (const w of running) await w.stop();
    for (const h of harnesses) await h.close();
    await ownServer?.stop();
    await receiver?.close();
    await dropDatabase(db);
  });

  const harness = async (env: Record<string, string> = {}) => {
    const h = await createHarness({
      DATABASE_URL: databaseUrlOf(db),
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '2',
      ...env,
    });
    harnesses.push(h);
    return h;
  };
  const priorityOf = async (h: Harness, workflowId: string) =>
    (await h.client.workflow.getHandle(workflowId).describe()).priority?.priorityKey ?? 3;

  it('bulk starts carry the bulk priority, single ones the default', async () => {
    const h = await harness();
    const api = apiCaller(() => testApp(h));
    for (let i = 0; i < 11; i++) {
      await api('POST', '/v1/endpoints', { url: `${receiver.url}/fan/${i}`, eventTypes: ['prio.fan'] });
    }
    const one = await api<{ id: string }>('POST', '/v1/endpoints', {
      url: `${receiver.url}/one`,
      eventTypes: ['prio.one'],
    });
    const small = await api<{ deliveries: { id: string }[] }>('POST', '/v1/events', { type: 'prio.one', payload: {} });
    const large = await api<{ deliveries: { id: string }[] }>('POST', '/v1/events', { type: 'prio.fan', payload: {} });
    expect(large.body.deliveries).toHaveLength(11);
    expect(await priorityOf(h, `webhook:${small.body.deliveries[0]!.id}`)).toBe(3);
    for (const d of large.body.deliveries.slice(0, 3)) expect(await priorityOf(h, `webhook:${d.id}`)).toBe(4);

    // A redrive of dead letters is bulk; one delivery retried by hand is not.
    const dead = small.body.deliveries[0]!.id;
    await h.pool.query(`UPDATE opsflow.webhook_deliveries SET status = 'dead_lettered' WHERE id = $1`, [dead]);
    await h.pool.query(
      `INSERT INTO opsflow.dead_letters (id, delivery_id, endpoint_id, event_type, reason)
       VALUES ('dl_prio', $1, $2, 'prio.one', 'test')`,
      [dead, one.body.id],
    );
    await h.client.workflow.getHandle(`webhook:${dead}`).terminate('test: finished, so a redrive starts a new run');
    expect((await api('POST', '/v1/dead-letters/redrive', { endpointId: one.body.id })).body).toEqual({
      redriven: 1,
      failed: 0,
    });
    expect(await priorityOf(h, `webhook:${dead}`)).toBe(4);
    await h.client.workflow.getHandle(`webhook:${dead}`).terminate('test: again');
    expect((await api('POST', `/v1/deliveries/${dead}/retry`)).status).toBe(202);
    expect(await priorityOf(h, `webhook:${dead}`)).toBe(3);

    // A recover's run is bulk.
    const recover = await api<{ id: string }>('POST', `/v1/endpoints/${one.body.id}/recover`, {
      since: new Date(Date.now() - 3600_000).toISOString(),
      status: 'all',
    });
    expect(recover.status).toBe(202);
    expect(await priorityOf(h, `webhook-recover:${recover.body.id}`)).toBe(4);

    // A batch import's workflows are bulk; a single PUT's is not.
    const expiresAt = new Date(Date.now() + 30 * 86_400_000).toISOString();
    const put = await api('PUT', '/v1/subscriptions/prio-single', { tenantId: 't', email: 'a@example.com', expiresAt });
    expect(put.status).toBe(201);
    expect(await priorityOf(h, 'subscription:t/prio-single')).toBe(3);
    const batch = await api('POST', '/v1/subscriptions:batch', {
      items: [{ id: 'prio-bulk', tenantId: 't', email: 'b@example.com', expiresAt }],
    });
    expect(batch.status).toBe(200);
    await waitFor(
      async () =>
        (await h.client.workflow
          .getHandle('subscription:t/prio-bulk')
          .describe()
          .catch(() => undefined)) != null,
      (found) => found,
      10_000,
    );
    expect(await priorityOf(h, 'subscription:t/prio-bulk')).toBe(4);
    // Nothing of this test stays queued on the shared server (no worker ever polls these queues).
    const ids = [
      ...large.body.deliveries.map((d) => `webhook:${d.id}`),
      `webhook:${dead}`,
      `webhook-recover:${recover.body.id}`,
      'subscription:t/prio-single',
      'subscription:t/prio-bulk',
    ];
    for (const id of ids)
      await h.client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
  });

  /** Queues a fan-out and then one small publish with no worker; a 2-slot worker comes up; where the small one lands. */
  const arrivalOfTheSmallOne = async (h: Harness, tag: string) => {
    const api = apiCaller(() => testApp(h));
    for (let i = 0; i < FAN; i++) {
      await api('POST', '/v1/endpoints', { url: `${receiver.url}/${tag}/fan/${i}`, eventTypes: [`${tag}.fan`] });
    }
    await api('POST', '/v1/endpoints', { url: `${receiver.url}/${tag}/one`, eventTypes: [`${tag}.one`] });
    const fan = await api<{ deliveries: unknown[] }>('POST', '/v1/events', { type: `${tag}.fan`, payload: {} });
    expect(fan.body.deliveries).toHaveLength(FAN);
    await api('POST', '/v1/events', { type: `${tag}.one`, payload: {} });
    const workers = await startWorkers(h, ['webhooks']);
    running.push(workers);
    const mine = () => receiver.requests.filter((r) => r.path.startsWith(`/${tag}/`));
    await waitFor(
      () => Promise.resolve(mine().length),
      (n) => n === FAN + 1,
      60_000,
    );
    await workers.stop();
    running.splice(running.indexOf(workers), 1);
    return mine().findIndex((r) => r.path === `/${tag}/one`);
  };

  it('the server runs the small publish ahead of a queued fan-out; without the separation it waits behind it', async () => {
    ownServer = await startDevServer({
      bin: inject('temporalCliPath'),
      port: await freePort(),
      namespace: 'default',
      dynamicConfig: { 'matching.numTaskqueueReadPartitions': 1, 'matching.numTaskqueueWritePartitions': 1 },
    });
    const own = { TEMPORAL_ADDRESS: ownServer.address };
    const separated = await arrivalOfTheSmallOne(await harness(own), 'sep');
    const flat = await arrivalOfTheSmallOne(await harness({ ...own, BULK_TASK_PRIORITY: '3' }), 'flat');
    expect(separated, `arrived ${separated + 1}th of ${FAN + 1}`).toBeLessThan(8);
    expect(flat, `arrived ${flat + 1}th of ${FAN + 1}`).toBeGreaterThan(FAN - 8);
  });
});
