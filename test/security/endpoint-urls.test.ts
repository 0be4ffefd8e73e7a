/**
 * Trust: an endpoint's URL is a credential when it is a Slack (or Teams, or tokened) webhook — whoever holds
 * `https://hooks.slack.com/services/…` can post fake alerts to the ops channel. A key that may read endpoints but
 * not change them sees scheme and host and a fingerprint; a key with endpoints:write (which could re-point it
 * anyway) sees the URL. Real API (app.request), real PostgreSQL and Temporal (the harness).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiCaller } from '../helpers/api.js';
import { createHarness, testApp, type Harness } from '../helpers/harness.js';

describe('security: endpoint URLs', () => {
  let h: Harness;
  const url = 'http://127.0.0.1:9/services/T0000/B0000/sEcReTtOkEn?token=also-secret';
  const fingerprint = `sha256:${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;
  let id = '';
  let reader: ReturnType<typeof apiCaller>;
  let writer: ReturnType<typeof apiCaller>;

  beforeAll(async () => {
    h = await createHarness({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    const admin = apiCaller(() => testApp(h));
    const made = await admin<{ id: string; url: string }>('POST', '/v1/endpoints', { url, format: 'slack' });
    expect(made.body.url).toBe(url);
    id = made.body.id;
    const r = await admin<{ key: string }>('POST', '/v1/api-keys', { name: 'dashboard', scopes: ['read'] });
    const w = await admin<{ key: string }>('POST', '/v1/api-keys', {
      name: 'ops',
      scopes: ['read', 'endpoints:write'],
    });
    reader = apiCaller(() => testApp(h), r.body.key);
    writer = apiCaller(() => testApp(h), w.body.key);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a read key sees scheme, host and the fingerprint, never the path or query', async () => {
    const one = await reader<{ url: string; urlFingerprint: string }>('GET', `/v1/endpoints/${id}`);
    expect(one.body).toMatchObject({ url: 'http://127.0.0.1:9/…', urlFingerprint: fingerprint });
    const list = await reader<{ items: { id: string; url: string }[] }>('GET', '/v1/endpoints?limit=200');
    const listed = list.body.items.find((e) => e.id === id)!;
    expect(listed.url).toBe('http://127.0.0.1:9/…');
    expect(JSON.stringify(list.body)).not.toContain('sEcReTtOkEn');
    expect(JSON.stringify(list.body)).not.toContain('also-secret');
  });

  it('a key with endpoints:write sees the URL', async () => {
    const one = await writer<{ url: string; urlFingerprint: string }>('GET', `/v1/endpoints/${id}`);
    expect(one.body).toMatchObject({ url, urlFingerprint: fingerprint });
  });
});
