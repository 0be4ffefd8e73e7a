/**
 * A worker process killed (SIGKILL) in the middle of an attempt: another worker takes the attempt over
 * once the heartbeat times out, and the delivery ends in exactly one terminal state.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryWorkflowId } from '../../lib/webhooks/contract.js';
import { createHarness, startWorkers, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';
import { startReceiver, type Receiver } from '../helpers/http.js';
import { harnessEnv, spawnEntry } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

describe('webhook delivery survives a worker crash', () => {
  let h: Harness;
  let receiver: Receiver;

  beforeAll(async () => {
    h = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    // The first request hangs (the worker is killed while waiting on it); later ones succeed.
    receiver = await startReceiver((req, res) => {
      if (receiver.requests.length > 1) res.writeHead(200).end('ok');
    });
  });
  afterAll(async () => {
    await receiver.close();
    await h.close();
  });

  it('finishes on another worker with one terminal state and no dead letter', async () => {
    const child = spawnEntry('worker/main.ts', harnessEnv(h, { WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' }));
    try {
      const app = testApp(h);
      const type = `crash.${randomBytes(4).toString('hex')}`;
      const headers = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };
      const ep = await app.request('/v1/endpoints', {
        method: 'POST',
        headers,
        body: JSON.stringify({ url: receiver.url, eventTypes: [type], retrySchedule: ['0s', '1m'], timeoutMs: 60_000 }),
      });
      expect(ep.status).toBe(201);
      const res = await app.request('/v1/events', {
        method: 'POST',
        headers,
        body: JSON.stringify({ type, payload: {} }),
      });
      const event = (await res.json()) as { eventId: string; deliveries: { id: string }[] };
      const deliveryId = event.deliveries[0]!.id;

      // The first attempt comes once the child has started, which includes bundling the workflows with webpack
      // (tsx, no pre-built bundle): on a loaded 2-core CI machine under Node 24 that once took over 60 s.
      await waitFor(
        () => receiver.requests.length,
        (n) => n === 1,
        150_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nworker output:\n${child.output()}`);
      });
      await child.kill('SIGKILL');

      const survivor = await startWorkers(h, ['webhooks']);
      try {
        const result: unknown = await h.client.workflow.getHandle(deliveryWorkflowId(deliveryId)).result();
        expect(result).toMatchObject({ status: 'delivered' });
      } finally {
        await survivor.stop();
      }
      // At-least-once on the wire (the killed attempt may have reached the receiver), same webhook-id.
      expect(receiver.requests.length).toBe(2);
      expect(new Set(receiver.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set([event.eventId]));
      const { rows } = await h.pool.query<{ status: string; attempts: number }>(
        'SELECT status, attempts FROM opsflow.webhook_deliveries WHERE id = $1',
        [deliveryId],
      );
      expect(rows).toEqual([{ status: 'delivered', attempts: 1 }]);
      const attempts = await h.pool.query('SELECT attempt_no FROM opsflow.webhook_attempts WHERE delivery_id = $1', [
        deliveryId,
      ]);
      expect(attempts.rowCount).toBe(1);
      const dead = await h.pool.query('SELECT 1 FROM opsflow.dead_letters WHERE delivery_id = $1', [deliveryId]);
      expect(dead.rowCount).toBe(0);
    } finally {
      await child.kill('SIGKILL');
    }
  }, 240_000);
});
