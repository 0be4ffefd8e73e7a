/** /openapi.json covers every route the app serves; /docs works offline (no external URL, assets served). */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPES } from '../lib/keys/scopes.js';
import { createHarness, testApp, TEST_API_KEY, type Harness } from './helpers/harness.js';

interface OpenApiDoc {
  openapi: string;
  info: { title: string };
  paths: Record<
    string,
    Record<
      string,
      {
        responses?: Record<string, unknown>;
        security?: { bearerAuth: string[] }[];
        description?: string;
        operationId?: string;
        tags?: string[];
      }
    >
  >;
  components?: { securitySchemes?: Record<string, unknown> };
}

describe('OpenAPI document and docs page', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('is OpenAPI 3.1 and documents every /v1 route the app serves, with responses and the scope it needs', async () => {
    const app = testApp(h);
    const res = await app.request('/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as OpenApiDoc;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components?.securitySchemes?.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    const served = app.routes
      .filter((r) => r.path.startsWith('/v1/') && r.method !== 'ALL')
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/\/:(\w+)/g, '/{$1}')}`);
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    expect(served.length).toBeGreaterThan(30);
    // Spot checks of the authority model.
    expect(doc.paths['/v1/events']?.post?.security).toEqual([{ bearerAuth: ['events:publish'] }]);
    expect(doc.paths['/v1/deploys/{id}/approve']?.post?.security).toEqual([{ bearerAuth: ['deploys:approve'] }]);
    expect(doc.paths['/v1/backups/{id}/restore']?.post?.security).toEqual([{ bearerAuth: ['backups:restore'] }]);
    expect(doc.paths['/v1/api-keys']?.post?.security).toEqual([{ bearerAuth: ['keys:admin'] }]);
    for (const route of served) expect(documented, route).toContain(route);
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses ?? {}), `${m} ${p} responses`).toEqual(
          expect.arrayContaining(['400', '401', '403', '429', '500']),
        );
        // One scope per route, declared once: the bearer scheme's required role and the description agree.
        expect(op.security, `${m} ${p} security`).toEqual([{ bearerAuth: [expect.any(String)] }]);
        const scope = op.security![0]!.bearerAuth[0]!;
        expect(SCOPES, `${m} ${p}`).toContain(scope);
        expect(op.description, `${m} ${p}`).toContain(`Requires the scope \`${scope}\``);
      }
    }
  });

  it('every operation has a unique operationId and its family tag; redocly lint (recommended) is clean', async () => {
    const doc = (await (await testApp(h).request('/openapi.json')).json()) as OpenApiDoc & {
      tags?: { name: string }[];
    };
    const ops = Object.values(doc.paths).flatMap((o) => Object.values(o));
    const ids = ops.map((op) => op.operationId);
    expect(
      ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id)),
      JSON.stringify(ids),
    ).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(doc.paths['/v1/events']?.post?.operationId).toBe('publishEvent');
    expect(doc.paths['/v1/deploys/{id}/approve']?.post?.operationId).toBe('approveDeploy');
    const tags = new Set(doc.tags?.map((t) => t.name));
    for (const op of ops) expect(op.tags?.length === 1 && tags.has(op.tags[0]!), op.operationId).toBe(true);

    const dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-openapi-'));
    try {
      const file = path.join(dir, 'openapi.json');
      await writeFile(file, JSON.stringify(doc));
      const { stdout } = await promisify(execFile)(
        path.resolve('node_modules/.bin/redocly'),
        ['lint', file, '--format=json'],
        { env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } },
      ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
      const report = JSON.parse(stdout) as { problems: { ruleId: string; message: string }[] };
      expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves an interactive docs page with no external URL, its assets from opsflow itself', async () => {
    const app = testApp(h);
    const res = await app.request('/docs');
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toContain('/docs/assets/swagger-ui-bundle.js');
    for (const a of assets) {
      const asset = await app.request(a);
      expect(asset.status, a).toBe(200);
      expect((await asset.arrayBuffer()).byteLength, a).toBeGreaterThan(0);
    }
    const init = await (await app.request('/docs/assets/init.js')).text();
    expect(init).toContain("url: '/openapi.json'");
    expect((await app.request('/docs/assets/..%2Fpackage.json')).status).toBe(404);
    expect((await app.request('/docs/assets/index.html')).status).toBe(404);
  });
});

describe('API hardening: rate limit before authentication, security headers, CORS', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ OPSFLOW_API_KEYS: `${TEST_API_KEY},second-key-0123456789abcdef-0123456789` });
  });
  afterAll(async () => {
    await h.close();
  });

  it('429 with Retry-After and the envelope once a key spends its budget; other keys are unaffected', async () => {
    const app = testApp(h, {
      apiKeys: [TEST_API_KEY, 'second-key-0123456789abcdef-0123456789'],
      config: { ...h.config, rateLimitPerMinute: 3 },
    });
    const as = (key: string) => app.request('/v1/deploy-targets', { headers: { authorization: `Bearer ${key}` } });
    for (let i = 0; i < 3; i++) expect((await as(TEST_API_KEY)).status).toBe(200);
    const limited = await as(TEST_API_KEY);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(20);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    expect((await as('second-key-0123456789abcdef-0123456789')).status).toBe(200);
  });

  it('the limit runs before authentication: wrong keys (even a new one each time), /ready and /metrics count', async () => {
    const limited = () => testApp(h, { config: { ...h.config, rateLimitPerMinute: 3 } });
    const app = limited();
    const wrong = (i: number) =>
      app.request('/v1/deploy-targets', { headers: { authorization: `Bearer invented-key-${i}-0123456789` } });
    for (let i = 0; i < 3; i++) expect((await wrong(i)).status).toBe(401);
    expect((await wrong(99)).status).toBe(429);
    // The address is spent: public routes are refused too, before they query anything.
    expect((await app.request('/ready')).status).toBe(429);
    const ready = limited();
    for (let i = 0; i < 3; i++) expect((await ready.request('/ready')).status).toBe(200);
    expect((await ready.request('/ready')).status).toBe(429);
    const metrics = limited();
    for (let i = 0; i < 3; i++) expect((await metrics.request('/metrics')).status).toBe(200);
    const refused = await metrics.request('/metrics');
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    // An address that spent its budget on refused requests: a key it sends is looked up first — an invented one
    // is refused, a valid one goes on, on its own budget (a stranger at that address cannot spend it).
    const keyed = limited();
    for (let i = 0; i < 3; i++) expect((await keyed.request('/v1/deploy-targets')).status).toBe(401);
    expect(
      (await keyed.request('/v1/deploy-targets', { headers: { authorization: 'Bearer invented-key-0123456789' } }))
        .status,
    ).toBe(429);
    expect(
      (await keyed.request('/v1/deploy-targets', { headers: { authorization: `Bearer ${TEST_API_KEY}` } })).status,
    ).toBe(200);
  });

  it('sets security headers; CORS is off by default and answers only configured origins', async () => {
    const plain = testApp(h);
    const res = await plain.request('/health', { headers: { origin: 'https://app.example.com' } });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('access-control-allow-origin')).toBeNull();

    const withCors = testApp(h, { config: { ...h.config, corsOrigins: ['https://app.example.com'] } });
    const preflight = await withCors.request('/v1/deploy-targets', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const other = await withCors.request('/health', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
