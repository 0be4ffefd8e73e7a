/**
 * The README's "Receiving opsflow webhooks" snippet, run as written against a real delivery: it accepts what
 * opsflow sends and refuses a tampered body, a wrong secret and a stale timestamp.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryWorkflowId } from '../../lib/webhooks/contract.js';
import {
  createHarness,
  startWorkers,
  testApp,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from '../helpers/harness.js';
import { startReceiver, type Receiver } from '../helpers/http.js';

type Verify = (headers: Record<string, unknown>, raw: Buffer, secret: string, tolerance?: number) => unknown;

describe('README webhook verification snippet', () => {
  let h: Harness;
  let workers: TestWorkers;
  let receiver: Receiver;
  let verify: Verify;
  let dir: string;

  beforeAll(async () => {
    const readme = await readFile('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('### Receiving opsflow webhooks'));
    const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    expect(code, 'the README section has a js snippet').toBeDefined();
    dir = await mkdtemp(path.join(os.tmpdir(), 'snippet-'));
    await writeFile(path.join(dir, 'verify.mjs'), code!);
    ({ verifyOpsflowWebhook: verify } = (await import(pathToFileURL(path.join(dir, 'verify.mjs')).href)) as {
      verifyOpsflowWebhook: Verify;
    });
    receiver = await startReceiver((_req, res) => {
      res.writeHead(204).end();
    });
    h = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    workers = await startWorkers(h, ['webhooks']);
  });
  afterAll(async () => {
    await workers.stop();
    await h.close();
    await receiver.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('verifies a real delivery and refuses tampering, a wrong secret and a stale timestamp', async () => {
    const app = testApp(h);
    const headers = { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' };
    const type = `readme.${randomBytes(4).toString('hex')}`;
    const ep = (await (
      await app.request('/v1/endpoints', {
        method: 'POST',
        headers,
        body: JSON.stringify({ url: receiver.url, eventTypes: [type] }),
      })
    ).json()) as { secret: string };
    const event = (await (
      await app.request('/v1/events', { method: 'POST', headers, body: JSON.stringify({ type, payload: { n: 1 } }) })
    ).json()) as { deliveries: { id: string }[] };
    await h.client.workflow.getHandle(deliveryWorkflowId(event.deliveries[0]!.id)).result();
    const got = receiver.requests.at(-1)!;
    const raw = Buffer.from(got.body);

    expect(verify(got.headers, raw, ep.secret)).toMatchObject({ type, data: { n: 1 } });
    expect(() => verify(got.headers, Buffer.from(got.body.replace('"n":1', '"n":2')), ep.secret)).toThrow(
      /bad signature/,
    );
    expect(() => verify(got.headers, raw, `whsec_${randomBytes(24).toString('base64')}`)).toThrow(/bad signature/);
    expect(() => verify(got.headers, raw, ep.secret, -1)).toThrow(/timestamp/);
    expect(() => verify({ ...got.headers, 'webhook-id': undefined }, raw, ep.secret)).toThrow(/missing/);
  });
});
