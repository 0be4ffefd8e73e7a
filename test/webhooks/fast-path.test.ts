/**
 * The delivery fast path (issue 16): what a delivery costs the Temporal server, read from its real history on
 * the dev server. webhookDeliveryFast answered on its first attempt: 7 events, one workflow task, no activity
 * task, started eagerly when the API's client runs on the workers' connection (as `npm start` runs them).
 * webhookDelivery (WEBHOOK_DELIVERY_PATH=classic) keeps its 12 events. After a failed first attempt the fast
 * path is the classic one (durable timer, activities); a first attempt that fails as an activity is made again
 * as a normal activity, and the receiver still gets one request.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historyCost } from '../../lib/history-cost.js';
import { OpsStatus } from '../../lib/search-attributes.js';
import { canStartEagerly } from '../../lib/webhooks/service.js';
import {
  deliveryWorkflowId,
  WEBHOOK_DELIVERY_FAST_WORKFLOW,
  WEBHOOK_DELIVERY_WORKFLOW,
} from '../../lib/webhooks/contract.js';
import { createHarness, startWorkers, testApp, type Harness, type TestWorkers } from '../helpers/harness.js';
import { authHeaders } from '../helpers/api.js';
import { saveHistory } from '../helpers/histories.js';
import { respond, startReceiver, type Receiver } from '../helpers/http.js';

const auth = authHeaders();

describe('webhook delivery fast path', () => {
  let h: Harness;
  let classic: Harness;
  let workers: TestWorkers;
  let classicWorkers: TestWorkers;
  let eagerClient: Client;
  let receiver: Receiver;
  const eagerly: boolean[] = [];
  /** Set: the workers' next lookup of a recorded attempt fails as PostgreSQL going away would. */
  let failNextLookup = false;

  beforeAll(async () => {
    receiver = await startReceiver(respond(200, 'ok'));
    h = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    expect(h.config.webhooks.deliveryPath).toBe('fast');
    const faulty = new Proxy(h.pool, {
      get(target, prop, recv) {
        if (prop !== 'query') return Reflect.get(target, prop, recv) as unknown;
        return (sql: unknown, ...rest: unknown[]) => {
          if (failNextLookup && typeof sql === 'string' && sql.includes('AS recorded')) {
            // the attempt's first query (the delivery with its attempt's record, if any)
            failNextLookup = false;
            return Promise.reject(new Error('Connection terminated unexpectedly'));
          }
          return (target.query as (...a: unknown[]) => unknown)(sql, ...rest);
        };
      },
    });
    workers = await startWorkers(h, ['webhooks'], { pool: faulty });
    // The API's client on the workers' connection, as `npm start` has it; the interceptor sees each start's answer.
    eagerClient = new Client({
      connection: workers.connection,
      namespace: h.config.temporal.namespace,
      interceptors: {
        workflow: [
          {
            async startWithDetails(input, next) {
              const out = await next(input);
              eagerly.push(out.eagerlyStarted);
              return out;
            },
          },
        ],
      },
    });
    classic = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', WEBHOOK_DELIVERY_PATH: 'classic' });
    classicWorkers = await startWorkers(classic, ['webhooks']);
  });
  afterAll(async () => {
    await workers?.stop();
    await classicWorkers?.stop();
    await h?.close();
    await classic?.close();
    await receiver?.close();
  });

  async function deliverOne(on: Harness, client: Client, url: string, retrySchedule = ['0s', '300ms']) {
    const app = testApp(on, { temporal: client });
    const type = `fast.${randomBytes(4).toString('hex')}`;
    const ep = await app.request('/v1/endpoints', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ url, eventTypes: [type], retrySchedule }),
    });
    expect(ep.status).toBe(201);
    const res = await app.request('/v1/events', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ type, payload: {} }),
    });
    expect(res.status).toBe(202);
    const event = (await res.json()) as { eventId: string; deliveries: { id: string }[] };
    const handle = on.client.workflow.getHandle(deliveryWorkflowId(event.deliveries[0]!.id));
    const result = (await handle.result()) as { status: string; attempts: number };
    const desc = await handle.describe();
    return { event, handle, result, desc, cost: historyCost(await handle.fetchHistory()) };
  }

  it('a first-try delivery: 7 events, 1 workflow task, no activity task, started eagerly', async () => {
    expect(canStartEagerly(eagerClient)).toBe(true);
    expect(canStartEagerly(h.client)).toBe(false);
    const before = receiver.requests.length;
    const { event, result, desc, cost } = await deliverOne(h, eagerClient, receiver.url);
    expect(result).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(desc.type).toBe(WEBHOOK_DELIVERY_FAST_WORKFLOW);
    expect(desc.typedSearchAttributes.get(OpsStatus)).toBe('delivered');
    expect(cost.types).toEqual([
      'WORKFLOW_EXECUTION_STARTED',
      'WORKFLOW_TASK_SCHEDULED',
      'WORKFLOW_TASK_STARTED',
      'WORKFLOW_TASK_COMPLETED',
      'MARKER_RECORDED',
      'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES',
      'WORKFLOW_EXECUTION_COMPLETED',
    ]);
    expect(cost).toMatchObject({ events: 7, workflowTasks: 1, activityTasks: 0, localActivities: 1 });
    expect(eagerly).toEqual([true]);
    expect(receiver.requests.slice(before).map((r) => r.headers['webhook-id'])).toEqual([event.eventId]);
    const { rows } = await h.pool.query<{ attempt_no: number; status_code: number }>(
      `SELECT a.attempt_no, a.status_code FROM opsflow.webhook_attempts a
       JOIN opsflow.webhook_deliveries d ON d.id = a.delivery_id WHERE d.event_id = $1`,
      [event.eventId],
    );
    expect(rows).toEqual([{ attempt_no: 1, status_code: 200 }]);
    await saveHistory(desc.workflowId, 'webhooks/fast-delivered.json');
  });

  it('without the shared connection the start is not eager, and the cost is the same', async () => {
    const { result, cost } = await deliverOne(h, h.client, receiver.url);
    expect(result).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(cost).toMatchObject({ events: 7, workflowTasks: 1, activityTasks: 0 });
  });

  it('the classic path (WEBHOOK_DELIVERY_PATH=classic) costs 12 events, 2 workflow tasks, 1 activity task', async () => {
    const { result, desc, cost } = await deliverOne(classic, classic.client, receiver.url);
    expect(result).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(desc.type).toBe(WEBHOOK_DELIVERY_WORKFLOW);
    expect(cost).toMatchObject({ events: 12, workflowTasks: 2, activityTasks: 1, localActivities: 0 });
  });

  it('after a failed first attempt: a durable timer and activities, each attempt recorded once', async () => {
    let calls = 0;
    const flaky = await startReceiver((_req, res) => {
      calls += 1;
      res.writeHead(calls === 1 ? 500 : 200).end();
    });
    try {
      const { result, desc, cost, event } = await deliverOne(h, eagerClient, flaky.url);
      expect(result).toMatchObject({ status: 'delivered', attempts: 2 });
      expect(cost.localActivities).toBe(1);
      expect(cost.activityTasks).toBe(1);
      expect(cost.types).toContain('TIMER_STARTED');
      expect(desc.typedSearchAttributes.get(OpsStatus)).toBe('delivered');
      const { rows } = await h.pool.query<{ attempt_no: number; status_code: number }>(
        `SELECT a.attempt_no, a.status_code FROM opsflow.webhook_attempts a
         JOIN opsflow.webhook_deliveries d ON d.id = a.delivery_id WHERE d.event_id = $1 ORDER BY a.attempt_no`,
        [event.eventId],
      );
      expect(rows).toEqual([
        { attempt_no: 1, status_code: 500 },
        { attempt_no: 2, status_code: 200 },
      ]);
      expect(flaky.requests).toHaveLength(2);
      await saveHistory(desc.workflowId, 'webhooks/fast-retried.json');
    } finally {
      await flaky.close();
    }
  });

  it('a first attempt that fails as an activity is made again as a normal one, sending once', async () => {
    const own = await startReceiver(respond(200, 'ok'));
    try {
      failNextLookup = true;
      const { result, cost } = await deliverOne(h, eagerClient, own.url);
      expect(failNextLookup).toBe(false); // the fault did happen
      expect(result).toMatchObject({ status: 'delivered', attempts: 1 });
      expect(cost.localActivities).toBe(1); // the failed local try's marker
      expect(cost.activityTasks).toBe(1);
      expect(own.requests).toHaveLength(1);
    } finally {
      await own.close();
    }
  });
});
