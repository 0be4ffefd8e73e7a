/**
 * Trust: an event payload nested hundreds of thousands of levels deep (a 1 MB body allows ~500k) is refused with
 * 400 naming the limit, not a 500 from a stack overflow; 64 levels are accepted. Real API over app.request, real
 * PostgreSQL and Temporal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_DEPTH, nestingDepth } from '../../api/routes/webhooks/events.js';
import { authHeaders } from '../helpers/api.js';
import { createHarness, testApp, type Harness } from '../helpers/harness.js';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('security: payload depth', () => {
  let h: Harness;
  let app: ReturnType<typeof testApp>;
  beforeAll(async () => {
    h = await createHarness();
    app = testApp(h);
  });
  afterAll(async () => {
    await h?.close();
  });
  const publish = (payload: string) =>
    app.request('/v1/events', {
      method: 'POST',
      headers: authHeaders(),
      body: `{"type":"depth.check","payload":${payload}}`,
    });

  it('counts depth without recursion', () => {
    expect(nestingDepth(1)).toBe(0);
    expect(nestingDepth({ a: [1, { b: 2 }] })).toBe(3);
    expect(nestingDepth(JSON.parse(nested(400_000)))).toBe(MAX_PAYLOAD_DEPTH + 1); // stops counting past the limit
  });

  it('a payload nested 400,000 levels deep is 400 naming the limit', async () => {
    const res = await publish(nested(400_000));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('validation_failed');
    expect(body.error.message).toContain(`nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
  });

  it(`${MAX_PAYLOAD_DEPTH} levels are accepted, one more is not`, async () => {
    expect((await publish(nested(MAX_PAYLOAD_DEPTH))).status).toBe(202);
    expect((await publish(nested(MAX_PAYLOAD_DEPTH + 1))).status).toBe(400);
  });
});
