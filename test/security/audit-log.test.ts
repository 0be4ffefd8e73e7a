/**
 * Trust: who did what is recorded for every change. Each mutating route (all of them, walked from the OpenAPI
 * document) leaves exactly one audit row naming the key, the operation, the outcome and the request id — refused
 * and denied attempts too; a request without a valid key leaves none. Successful changes name their resource
 * (a create, the id it made); console logins, logouts and writes are recorded as the console's. Rows are written
 * ahead of the change: a request whose row cannot be written changes nothing, one not completed stays pending. GET /v1/audit
 * filters and pages them behind `audit:read`; the Audit page shows them. Real API (app.request), real PostgreSQL
 * (a database of this file's own), real Temporal (the shared dev server).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outcomeOf } from '../../lib/audit/log.js';
import { envKeyId } from '../../lib/keys/store.js';
import { apiCaller, authHeaders, bearer } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, testApp, TEST_API_KEY, type Harness } from '../helpers/harness.js';

const db = `opsflow_sec_audit_${process.pid}`;

interface Row {
  actor_key_id: string | null;
  actor_name: string | null;
  action: string;
  resource: string | null;
  outcome: string;
  status: number | null;
  via: string;
  detail: Record<string, string> | null;
}

interface Operation {
  operationId: string;
  requestBody?: unknown;
}

describe('security: the audit log', () => {
  let h: Harness;
  let app: ReturnType<typeof testApp>;
  const admin = () => apiCaller(app);
  const rowsOf = async (requestId: string | null) =>
    (await h.pool.query<Row>('SELECT * FROM opsflow.audit_log WHERE request_id = $1', [requestId])).rows;

  beforeAll(async () => {
    await freshStateDatabase(db);
    h = await createHarness({ DATABASE_URL: databaseUrlOf(db), WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    app = testApp(h);
  });
  afterAll(async () => {
    await h?.close();
    await dropDatabase(db);
  });

  it('every mutating route leaves exactly one row: the key, the operation, the outcome and status, the request id', async () => {
    const doc = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const walked: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of ['post', 'put', 'patch', 'delete']) {
        const op = item[method];
        if (!op) continue;
        // Nothing here may change anything: ids that do not exist, bodies that do not parse.
        const res = await app.request(path.replace(/\{[^}]+\}/g, 'audit-probe'), {
          method: method.toUpperCase(),
          ...(op.requestBody ? { headers: authHeaders(), body: '{' } : { headers: bearer() }),
        });
        expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
        const rows = await rowsOf(res.headers.get('x-request-id'));
        expect(rows, `${method} ${path}`).toHaveLength(1);
        expect(rows[0], `${method} ${path}`).toMatchObject({
          actor_key_id: envKeyId(TEST_API_KEY),
          actor_name: 'env-1',
          action: op.operationId,
          outcome: outcomeOf(res.status),
          status: res.status,
          via: 'api',
        });
        expect(rows[0]!.detail?.error, `${method} ${path}`).toMatch(/^[a-z_]+$/);
        walked.push(op.operationId);
      }
    }
    // Every one of them, not a lucky few: the API has 26 mutating operations today.
    expect(walked.length).toBeGreaterThanOrEqual(26);
    expect(walked).toEqual(expect.arrayContaining(['createEndpoint', 'restoreBackup', 'revokeApiKey', 'startDeploy']));
  });

  it('a change names its resource; a denied attempt names the key that tried; no key, no row', async () => {
    const api = admin();
    const created = await app.request('/v1/endpoints', {
      method: 'POST',
      headers: authHeaders(),
      body: JSON.stringify({ url: 'http://127.0.0.1:9/hook', eventTypes: ['invoice.paid'] }),
    });
    expect(created.status).toBe(201);
    const endpoint = (await created.json()) as { id: string };
    expect(await rowsOf(created.headers.get('x-request-id'))).toEqual([
      expect.objectContaining({
        action: 'createEndpoint',
        resource: `endpoints/${endpoint.id}`,
        outcome: 'succeeded',
        status: 201,
      }),
    ]);
    const rotated = await app.request(`/v1/endpoints/${endpoint.id}/rotate-secret`, {
      method: 'POST',
      headers: bearer(),
    });
    expect(rotated.status).toBe(200);
    expect(await rowsOf(rotated.headers.get('x-request-id'))).toEqual([
      expect.objectContaining({ action: 'rotateEndpointSecret', resource: `endpoints/${endpoint.id}` }),
    ]);

    const publisher = await api<{ id: string; key: string }>('POST', '/v1/api-keys', {
      name: 'publisher',
      scopes: ['publisher'],
    });
    const denied = await app.request(`/v1/endpoints/${endpoint.id}`, {
      method: 'DELETE',
      headers: bearer(publisher.body.key),
    });
    expect(denied.status).toBe(403);
    expect(await rowsOf(denied.headers.get('x-request-id'))).toEqual([
      expect.objectContaining({
        actor_key_id: publisher.body.id,
        actor_name: 'publisher',
        action: 'deleteEndpoint',
        resource: `endpoints/${endpoint.id}`,
        outcome: 'denied',
        detail: { error: 'forbidden' },
      }),
    ]);

    const anonymous = await app.request(`/v1/endpoints/${endpoint.id}`, {
      method: 'DELETE',
      headers: bearer('not-a-key-0123456789abcdef'),
    });
    expect(anonymous.status).toBe(401);
    expect(await rowsOf(anonymous.headers.get('x-request-id'))).toEqual([]);
    // Reads are not changes.
    const read = await app.request('/v1/endpoints', { headers: bearer() });
    expect(await rowsOf(read.headers.get('x-request-id'))).toEqual([]);
  });

  it('written ahead: the row is in before the change; no row, no change; a row not completed stays pending', async () => {
    // A trigger on the endpoints table stands in for "the change": it refuses an insert that no pending
    // createEndpoint row precedes, so the create succeeds only if its row was committed before it.
    await h.pool.query(`CREATE FUNCTION opsflow.test_audit_first() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM opsflow.audit_log WHERE action = 'createEndpoint' AND outcome = 'pending') THEN
          RAISE EXCEPTION 'no pending audit row before the change';
        END IF;
        RETURN NEW;
      END $$`);
    await h.pool.query(`CREATE TRIGGER test_audit_first BEFORE INSERT ON opsflow.webhook_endpoints
      FOR EACH ROW EXECUTE FUNCTION opsflow.test_audit_first()`);
    const create = () =>
      app.request('/v1/endpoints', {
        method: 'POST',
        headers: authHeaders(),
        body: JSON.stringify({ url: 'http://127.0.0.1:9/ahead', eventTypes: ['invoice.paid'] }),
      });
    const endpoints = async () =>
      (await h.pool.query(`SELECT id FROM opsflow.webhook_endpoints WHERE url_origin LIKE '%127.0.0.1:9%'`)).rows
        .length;
    try {
      const before = await endpoints();
      const made = await create();
      expect(made.status).toBe(201);
      const { id } = (await made.json()) as { id: string };
      expect(await rowsOf(made.headers.get('x-request-id'))).toEqual([
        expect.objectContaining({ action: 'createEndpoint', resource: `endpoints/${id}`, outcome: 'succeeded' }),
      ]);
      expect(await endpoints()).toBe(before + 1);

      // The row cannot be written: the request is refused before anything changes.
      await h.pool.query(`CREATE FUNCTION opsflow.test_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$`);
      await h.pool.query(`CREATE TRIGGER test_audit_refuse BEFORE INSERT ON opsflow.audit_log
        FOR EACH ROW EXECUTE FUNCTION opsflow.test_audit_refuse()`);
      const refused = await create();
      expect(refused.status).toBe(503);
      const body = (await refused.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('unavailable');
      expect(body.error.message).toMatch(/audit log/);
      expect(await endpoints()).toBe(before + 1);
      const deleted = await app.request(`/v1/endpoints/${id}`, { method: 'DELETE', headers: bearer() });
      expect(deleted.status).toBe(503);
      const still = await h.pool.query<{ deleted_at: Date | null }>(
        'SELECT deleted_at FROM opsflow.webhook_endpoints WHERE id = $1',
        [id],
      );
      expect(still.rows[0]!.deleted_at).toBeNull();
      await h.pool.query('DROP TRIGGER test_audit_refuse ON opsflow.audit_log');

      // Written ahead but not completed (the API died, or PostgreSQL went away as it answered): the row stays
      // pending, with no status, and GET /v1/audit?outcome=pending finds it.
      await h.pool.query(`CREATE TRIGGER test_audit_refuse BEFORE UPDATE ON opsflow.audit_log
        FOR EACH ROW EXECUTE FUNCTION opsflow.test_audit_refuse()`);
      const rotated = await app.request(`/v1/endpoints/${id}/rotate-secret`, { method: 'POST', headers: bearer() });
      expect(rotated.status).toBe(200);
      const requestId = rotated.headers.get('x-request-id');
      expect(await rowsOf(requestId)).toEqual([
        expect.objectContaining({ action: 'rotateEndpointSecret', outcome: 'pending', status: null }),
      ]);
      await h.pool.query('DROP TRIGGER test_audit_refuse ON opsflow.audit_log');
      const pending = await admin()<{ items: { requestId: string; outcome: string; status: number | null }[] }>(
        'GET',
        '/v1/audit?outcome=pending',
      );
      expect(pending.status).toBe(200);
      expect(pending.body.items).toEqual([expect.objectContaining({ requestId, outcome: 'pending', status: null })]);
    } finally {
      await h.pool.query('DROP TRIGGER IF EXISTS test_audit_first ON opsflow.webhook_endpoints');
      await h.pool.query('DROP TRIGGER IF EXISTS test_audit_refuse ON opsflow.audit_log');
      await h.pool.query('DROP FUNCTION IF EXISTS opsflow.test_audit_first(), opsflow.test_audit_refuse()');
    }
  });

  it('console logins (failed ones too), writes and logouts are the console’s rows', async () => {
    const form = (key: string) =>
      app.request('/console/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
        body: new URLSearchParams({ key, next: '/console' }).toString(),
      });
    const failed = await form('wrong-key-0123456789abcdef');
    expect(failed.status).toBe(401);
    expect(await rowsOf(failed.headers.get('x-request-id'))).toEqual([
      expect.objectContaining({ actor_key_id: null, action: 'consoleLogin', outcome: 'denied', via: 'console' }),
    ]);
    const ok = await form(TEST_API_KEY);
    expect(ok.status).toBe(303);
    expect(await rowsOf(ok.headers.get('x-request-id'))).toEqual([
      expect.objectContaining({ actor_key_id: envKeyId(TEST_API_KEY), action: 'consoleLogin', outcome: 'succeeded' }),
    ]);
    const cookie = /opsflow_session=([^;]+)/.exec(ok.headers.get('set-cookie') ?? '')![1]!;
    const page = await app.request('/console/audit', { headers: { cookie: `opsflow_session=${cookie}` } });
    expect(page.status).toBe(200);
    const html = await page.text();
    const csrf = /<meta name="csrf-token" content="([^"]+)"/.exec(html)![1]!;
    // The Audit page shows the rows, the failed login among them.
    expect(html).toContain('consoleLogin');
    expect(html).toContain('denied 401');

    const write = await app.request('/v1/endpoints', {
      method: 'POST',
      headers: {
        cookie: `opsflow_session=${cookie}`,
        'x-csrf-token': csrf,
        origin: 'http://localhost',
        'content-type': 'application/json',
      },
      body: JSON.stringify({ url: 'http://127.0.0.1:9/console-hook' }),
    });
    expect(write.status).toBe(201);
    expect(await rowsOf(write.headers.get('x-request-id'))).toEqual([
      expect.objectContaining({ action: 'createEndpoint', via: 'console', actor_key_id: envKeyId(TEST_API_KEY) }),
    ]);
    const out = await app.request('/console/logout', {
      method: 'POST',
      headers: {
        cookie: `opsflow_session=${cookie}`,
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'http://localhost',
      },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(out.status).toBe(303);
    expect(await rowsOf(out.headers.get('x-request-id'))).toEqual([
      expect.objectContaining({ action: 'consoleLogout', via: 'console', actor_key_id: envKeyId(TEST_API_KEY) }),
    ]);
  });

  it('GET /v1/audit filters by actor, action, resource (or its prefix), outcome and time, in keyset pages; audit:read only', async () => {
    const api = admin();
    const mine = await api<{ id: string; key: string }>('POST', '/v1/api-keys', {
      name: 'auditor',
      scopes: ['audit:read', 'endpoints:write'],
    });
    const as = apiCaller(app, mine.body.key);
    const since = new Date().toISOString();
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      const ep = await as<{ id: string }>('POST', '/v1/endpoints', { url: `http://127.0.0.1:9/h${i}` });
      expect(ep.status).toBe(201);
      made.push(ep.body.id);
    }
    expect((await as('DELETE', `/v1/endpoints/${made[0]}`)).status).toBe(204);

    type Page = { items: { action: string; resource: string; actor: { keyId: string } }[]; nextCursor: string | null };
    const byActor = await as<Page>('GET', `/v1/audit?actor=${mine.body.id}`);
    expect(byActor.status).toBe(200);
    expect(byActor.body.items.map((r) => `${r.action} ${r.resource}`)).toEqual([
      `deleteEndpoint endpoints/${made[0]}`,
      `createEndpoint endpoints/${made[2]}`,
      `createEndpoint endpoints/${made[1]}`,
      `createEndpoint endpoints/${made[0]}`,
    ]);
    const exact = await as<Page>('GET', `/v1/audit?resource=endpoints/${made[0]}`);
    expect(exact.body.items.map((r) => r.action)).toEqual(['deleteEndpoint', 'createEndpoint']);
    const prefix = await as<Page>('GET', `/v1/audit?resource=${encodeURIComponent('endpoints/*')}&since=${since}`);
    expect(prefix.body.items).toHaveLength(4);
    // `_` in a prefix is a character, not a wildcard.
    expect((await as<Page>('GET', `/v1/audit?resource=${encodeURIComponent('endpoints_*')}`)).body.items).toEqual([]);
    const creates = await as<Page>('GET', `/v1/audit?action=createEndpoint&actor=${mine.body.id}`);
    expect(creates.body.items).toHaveLength(3);
    expect((await as<Page>('GET', `/v1/audit?until=${since}&actor=${mine.body.id}`)).body.items).toEqual([]);

    // Pages of 2: every row once, in order.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: Page } = await as<Page>(
        'GET',
        `/v1/audit?actor=${mine.body.id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...res.body.items.map((r) => `${r.action} ${r.resource}`));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(byActor.body.items.map((r) => `${r.action} ${r.resource}`));

    // Failure cases: bad filters, a reversed window, a bad cursor; a key without audit:read.
    expect((await as('GET', '/v1/audit?outcome=maybe')).status).toBe(400);
    expect((await as('GET', '/v1/audit?since=yesterday')).status).toBe(400);
    expect((await as('GET', `/v1/audit?since=${since}&until=${since}`)).status).toBe(422);
    expect((await as('GET', '/v1/audit?cursor=nope')).status).toBe(400);
    const reader = await api<{ key: string }>('POST', '/v1/api-keys', { name: 'reader', scopes: ['read'] });
    const refused = await apiCaller(app, reader.body.key)<{ error: { message: string } }>('GET', '/v1/audit');
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toContain('audit:read');
  });
});
