/**
 * Trust: what the unauthenticated surface gives away. `/ready` says which dependency is down but not its error
 * text (hosts, ports, users) unless the caller holds a valid key; the CSP forbids `<base>`, plugins and forms
 * posting elsewhere; Swagger UI does not keep a pasted key in localStorage; an SSRF refusal of a host name names
 * the rule, not the internal address the name resolved to. Real app over `app.request`, real PostgreSQL and
 * Temporal; a dead pool is a real connection to a closed port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../lib/db.js';
import { resolveWebhookTarget, transportPolicy } from '../../lib/webhooks/ssrf.js';
import { bearer } from '../helpers/api.js';
import { createHarness, testApp, type Harness } from '../helpers/harness.js';

describe('security: the unauthenticated surface', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('/ready names the dependency that is down, and gives its error text only to a caller with a key', async () => {
    const deadPool = createPool('postgres://opsflow_user@127.0.0.1:1/opsflow', 1);
    try {
      const app = testApp(h, { pool: deadPool });
      const anonymous = await app.request('/ready');
      expect(anonymous.status).toBe(503);
      const body = (await anonymous.json()) as { error: { message: string; details: Record<string, string> } };
      expect(body.error.details).toEqual({ postgres: 'unavailable', temporal: 'ok' });
      expect(body.error.message).toBe('Not ready: postgres');
      expect(JSON.stringify(body)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|:1\b/);

      const wrongKey = await app.request('/ready', { headers: bearer('not-a-key-0123456789') });
      expect(((await wrongKey.json()) as typeof body).error.details.postgres).toBe('unavailable');

      const keyed = await app.request('/ready', { headers: bearer() });
      expect(keyed.status).toBe(503);
      expect(((await keyed.json()) as typeof body).error.details.postgres).toMatch(/ECONNREFUSED|connect/);
    } finally {
      await deadPool.end();
    }
  });

  it('the Content-Security-Policy forbids <base>, plugins and forms posting to another origin', async () => {
    const res = await testApp(h).request('/health');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("base-uri 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
  });

  it('Swagger UI does not keep a pasted key (no persistAuthorization)', async () => {
    const res = await testApp(h).request('/docs/assets/init.js');
    expect(res.status).toBe(200);
    const script = await res.text();
    expect(script).toContain('SwaggerUIBundle(');
    expect(script).not.toMatch(/persistAuthorization/);
  });

  it('an SSRF refusal of a host name names the rule, not the address it resolved to', async () => {
    const resolver = () => Promise.resolve([{ address: '10.1.2.3', family: 4 }]);
    const policy = transportPolicy({ allowedCidrs: [], httpsOnly: false, allowedPorts: [] }, resolver);
    const refusal = resolveWebhookTarget('http://billing.internal.example/hook', policy);
    await expect(refusal).rejects.toThrow(
      'billing.internal.example resolves to a private, loopback or reserved address (outside WEBHOOK_ALLOWED_CIDRS)',
    );
    await expect(refusal).rejects.not.toThrow(/10\.1\.2\.3/);
    // A literal address was the caller's own: naming it tells nothing.
    await expect(resolveWebhookTarget('http://10.1.2.3/hook', policy)).rejects.toThrow(/10\.1\.2\.3 is a private/);
  });
});
