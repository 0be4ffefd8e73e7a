/**
 * Trust: a tenant key reaches its own tenant only. Every route of the tenant families (webhooks, subscriptions —
 * walked from the OpenAPI document, so a new route cannot be missed) is called with tenant A's key against
 * tenant B's endpoint, delivery, dead letter and subscription: others' answer 404 or 403, lists never show them,
 * and B's rows are byte for byte what they were. Every other route (backups, deploys, schedules, status, keys,
 * audit) refuses a tenant key whatever its scopes; so does the console. A's own work stays A's: its endpoint is
 * its tenant's, and its events reach its endpoints only — not B's, not the operator's. Real API (app.request),
 * real PostgreSQL (a database of this file's own), real Temporal (the shared dev server; no worker is needed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiCaller, type ApiAnswer } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, queryIn, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, testApp, type Harness } from '../helpers/harness.js';

const db = `opsflow_sec_tenant_${process.pid}`;
const ALL_SCOPES = ['admin'];

/** What the matrix's checks read of an answer. */
interface Body {
  items?: unknown[];
  error?: { code: string; message: string };
  rejected?: number;
  results?: { outcome?: string; error?: { code: string } }[];
  details?: { tenantId: string };
}
type Answer = ApiAnswer<Body>;

interface Operation {
  operationId: string;
  tags: string[];
}

describe('security: tenant-scoped keys', () => {
  let h: Harness;
  const admin = () => apiCaller(() => testApp(h));
  let tenantA: ReturnType<typeof apiCaller>;
  let tenantAKey: string;
  const b = {
    endpoint: '',
    event: '',
    delivery: '',
    deadLetter: '',
    subscription: 'sub_tenant_b_1',
    recover: 'rcv_tenant_b',
  };
  let operatorEndpoint = '';

  /** Everything tenant B has, as stored: compared before and after the matrix. */
  const snapshotB = () =>
    queryIn(
      db,
      `SELECT json_build_object(
         'endpoints', (SELECT json_agg(e ORDER BY id) FROM opsflow.webhook_endpoints e WHERE tenant_id = 'tenant-b'),
         'events', (SELECT json_agg(v ORDER BY id) FROM opsflow.webhook_events v WHERE tenant_id = 'tenant-b'),
         'deliveries', (SELECT json_agg(d ORDER BY id) FROM opsflow.webhook_deliveries d WHERE tenant_id = 'tenant-b'),
         'deadLetters', (SELECT json_agg(l ORDER BY id) FROM opsflow.dead_letters l),
         'subscriptions', (SELECT json_agg(s ORDER BY id) FROM opsflow.subscriptions s WHERE tenant_id = 'tenant-b'),
         'recovers', (SELECT json_agg(r ORDER BY id) FROM opsflow.webhook_recovers r),
         'catalogue', (SELECT json_agg(t ORDER BY name) FROM opsflow.event_types t)
       ) AS b`,
    );

  beforeAll(async () => {
    await freshStateDatabase(db);
    h = await createHarness({ DATABASE_URL: databaseUrlOf(db), WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    const api = admin();

    // Tenant B's world, made by the operator: an endpoint, an event with its delivery, a dead letter, a subscription.
    const ep = await api<{ id: string }>('POST', '/v1/endpoints', {
      url: 'http://127.0.0.1:9/b',
      tenantId: 'tenant-b',
    });
    expect(ep.status).toBe(201);
    b.endpoint = ep.body.id;
    const op = await api<{ id: string }>('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/operator' });
    operatorEndpoint = op.body.id;
    const ev = await api<{ eventId: string; deliveries: { id: string; endpointId: string }[] }>('POST', '/v1/events', {
      type: 'invoice.paid',
      payload: { id: 'in_b' },
      tenantId: 'tenant-b',
    });
    expect(ev.status).toBe(202);
    b.event = ev.body.eventId;
    b.delivery = ev.body.deliveries.find((d) => d.endpointId === b.endpoint)!.id;
    b.deadLetter = 'dl_tenant_b';
    await h.pool.query(`UPDATE opsflow.webhook_deliveries SET status = 'dead_lettered' WHERE id = $1`, [b.delivery]);
    await h.pool.query(
      `INSERT INTO opsflow.dead_letters (id, delivery_id, endpoint_id, event_type, reason)
       VALUES ($1, $2, $3, 'invoice.paid', 'gave up')`,
      [b.deadLetter, b.delivery, b.endpoint],
    );
    // The operator's catalogue entry.
    expect((await api('POST', '/v1/event-types', { name: 'invoice.paid', description: 'paid' })).status).toBe(201);
    // A recover of B's endpoint, running (its run is not needed: the matrix must not reach the row).
    await h.pool.query(
      `INSERT INTO opsflow.webhook_recovers (id, endpoint_id, tenant_id, since, until, which, requested_by, total)
       VALUES ($1, $2, 'tenant-b', now() - interval '1 hour', now(), 'failed', 'operator', 1)`,
      [b.recover, b.endpoint],
    );
    const sub = await api('PUT', `/v1/subscriptions/${b.subscription}`, {
      tenantId: 'tenant-b',
      email: 'b@example.com',
      expiresAt: new Date(Date.now() + 30 * 86_400_000).toISOString(),
    });
    expect(sub.status).toBe(201);

    // Tenant A's key, with every scope a key can hold.
    const key = await api<{ key: string; tenantId: string }>('POST', '/v1/api-keys', {
      name: 'tenant-a-admin',
      scopes: ALL_SCOPES,
      tenantId: 'tenant-a',
    });
    expect(key.status).toBe(201);
    expect(key.body.tenantId).toBe('tenant-a');
    tenantAKey = key.body.key;
    tenantA = apiCaller(() => testApp(h), tenantAKey);
  });
  afterAll(async () => {
    await h?.close();
    await dropDatabase(db);
  });

  it("every tenant-family route refuses tenant B's resources to tenant A's key, and changes nothing of B's", async () => {
    const before = await snapshotB();
    const future = new Date(Date.now() + 60 * 86_400_000).toISOString();
    const past = new Date(Date.now() - 86_400_000).toISOString();
    const subBody = (tenantId: string) => ({ tenantId, email: 'a@example.com', expiresAt: future });
    const matrix: [operationId: string, method: string, path: string, body: unknown, check: (r: Answer) => void][] = [
      ['createEndpoint', 'POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/x', tenantId: 'tenant-b' }, forbidden],
      ['listEndpoints', 'GET', '/v1/endpoints', undefined, listsNone(() => b.endpoint)],
      ['listEndpoints', 'GET', '/v1/endpoints?tenantId=tenant-b', undefined, forbidden],
      ['getEndpoint', 'GET', `/v1/endpoints/${b.endpoint}`, undefined, notFound],
      ['updateEndpoint', 'PATCH', `/v1/endpoints/${b.endpoint}`, { description: 'mine now' }, notFound],
      ['deleteEndpoint', 'DELETE', `/v1/endpoints/${b.endpoint}`, undefined, notFound],
      ['rotateEndpointSecret', 'POST', `/v1/endpoints/${b.endpoint}/rotate-secret`, undefined, notFound],
      ['sendTestEvent', 'POST', `/v1/endpoints/${b.endpoint}/test`, undefined, notFound],
      ['publishEvent', 'POST', '/v1/events', { type: 'invoice.paid', payload: {}, tenantId: 'tenant-b' }, forbidden],
      ['listEvents', 'GET', '/v1/events', undefined, listsNone(() => b.event)],
      ['listEvents', 'GET', '/v1/events?tenantId=tenant-b', undefined, forbidden],
      ['getEvent', 'GET', `/v1/events/${b.event}`, undefined, notFound],
      ['listDeliveries', 'GET', '/v1/deliveries', undefined, listsNone(() => b.delivery)],
      ['getDelivery', 'GET', `/v1/deliveries/${b.delivery}`, undefined, notFound],
      ['retryDelivery', 'POST', `/v1/deliveries/${b.delivery}/retry`, undefined, notFound],
      ['listDeadLetters', 'GET', '/v1/dead-letters', undefined, listsNone(() => b.deadLetter)],
      [
        'redriveDeadLetters',
        'POST',
        '/v1/dead-letters/redrive',
        {},
        (r) => expect(r.body).toEqual({ redriven: 0, failed: 0 }),
      ],
      ['discardDeadLetter', 'POST', `/v1/dead-letters/${b.deadLetter}/discard`, undefined, notFound],
      // The event catalogue is everyone's to read (customers integrate against it) and the operator's to write.
      ['listEventTypes', 'GET', '/v1/event-types', undefined, (r) => expect(r.status).toBe(200)],
      ['getEventType', 'GET', '/v1/event-types/invoice.paid', undefined, (r) => expect(r.status).toBe(200)],
      ['createEventType', 'POST', '/v1/event-types', { name: 'tenant.a.type', description: 'mine' }, forbidden],
      ['updateEventType', 'PATCH', '/v1/event-types/invoice.paid', { deprecated: true }, forbidden],
      ['recoverEndpoint', 'POST', `/v1/endpoints/${b.endpoint}/recover`, { since: past }, notFound],
      ['listRecovers', 'GET', '/v1/recovers', undefined, listsNone(() => b.recover)],
      ['listRecovers', 'GET', `/v1/recovers?endpointId=${b.endpoint}`, undefined, listsNone(() => b.recover)],
      ['getRecover', 'GET', `/v1/recovers/${b.recover}`, undefined, notFound],
      ['cancelRecover', 'POST', `/v1/recovers/${b.recover}/cancel`, undefined, notFound],
      ['listSubscriptions', 'GET', '/v1/subscriptions', undefined, listsNone(() => b.subscription)],
      ['listSubscriptions', 'GET', '/v1/subscriptions?tenantId=tenant-b', undefined, forbidden],
      ['getSubscription', 'GET', `/v1/subscriptions/${b.subscription}`, undefined, notFound],
      ['getSubscription', 'GET', `/v1/subscriptions/${b.subscription}?tenantId=tenant-b`, undefined, forbidden],
      ['renewSubscription', 'POST', `/v1/subscriptions/${b.subscription}/renew`, { expiresAt: future }, notFound],
      ['cancelSubscription', 'POST', `/v1/subscriptions/${b.subscription}/cancel`, {}, notFound],
      ['cancelSubscription', 'POST', `/v1/subscriptions/${b.subscription}/cancel?tenantId=tenant-b`, {}, forbidden],
      // Ids are per tenant: B's id is free for A, whose PUT makes A's own subscription (once refused as 404,
      // which told A that the id was someone else's).
      ['upsertSubscription', 'PUT', `/v1/subscriptions/${b.subscription}`, subBody('tenant-a'), createdForA],
      ['upsertSubscription', 'PUT', '/v1/subscriptions/sub_new_for_b', subBody('tenant-b'), forbidden],
      [
        'importSubscriptions',
        'POST',
        '/v1/subscriptions:batch',
        {
          items: [
            { id: 'sub_new_for_b', ...subBody('tenant-b') },
            { id: b.subscription, ...subBody('tenant-a') },
          ],
        },
        (r) => {
          expect(r.status).toBe(200);
          expect(r.body.rejected).toBe(1);
          expect(r.body.results?.map((x) => x.error?.code ?? x.outcome)).toEqual(['forbidden', 'unchanged']);
        },
      ],
    ];
    for (const [operationId, method, path, body, check] of matrix) {
      const res = await tenantA(method, path, body);
      try {
        check(res);
      } catch (err) {
        throw new Error(
          `${operationId} ${method} ${path}: ${(err as Error).message} (${res.status} ${JSON.stringify(res.body)})`,
        );
      }
    }

    // The matrix covers every operation of the tenant families: a new route there must join it.
    const doc = (await (await testApp(h).request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const tenantOps = Object.values(doc.paths)
      .flatMap((item) => Object.values(item))
      .filter((op) => op.tags.some((t) => t === 'webhooks' || t === 'subscriptions'))
      .map((op) => op.operationId);
    expect(new Set(matrix.map((m) => m[0]))).toEqual(new Set(tenantOps));

    // Nothing of B's changed on the way, and nothing was made for B.
    expect(await snapshotB()).toEqual(before);
    expect(await queryIn(db, `SELECT id FROM opsflow.subscriptions WHERE id = 'sub_new_for_b'`)).toEqual([]);
  });

  it("every other family's route refuses a tenant key whatever its scopes; so does the console", async () => {
    const doc = (await (await testApp(h).request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, Operation>>;
    };
    let walked = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (op.tags.some((t) => t === 'webhooks' || t === 'subscriptions')) continue;
        const res = await tenantA<{ error: { code: string; message: string } }>(
          method.toUpperCase(),
          path.replace(/\{[^}]+\}/g, 'x'),
          method === 'get' || method === 'delete' ? undefined : {},
        );
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.body.error.message, `${method} ${path}`).toContain("tenant tenant-a's");
        walked += 1;
      }
    }
    expect(walked).toBeGreaterThanOrEqual(20);
    // The operator finds every refused attempt in the audit log by tenant.
    const audit = await admin()<{ items: { actor: { tenantId: string }; outcome: string }[] }>(
      'GET',
      '/v1/audit?tenant=tenant-a&outcome=denied&limit=200',
    );
    expect(audit.body.items.length).toBeGreaterThanOrEqual(10);
    expect(new Set(audit.body.items.map((r) => r.actor.tenantId))).toEqual(new Set(['tenant-a']));
    expect((await admin()<{ items: unknown[] }>('GET', '/v1/audit?tenant=tenant-b')).body.items).toEqual([]);
    const login = await testApp(h).request('/console/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
      body: new URLSearchParams({ key: tenantAKey }).toString(),
    });
    expect(login.status).toBe(403);
    expect(login.headers.get('set-cookie')).toBeNull();
  });

  it("a tenant key's own work is its tenant's: its endpoint, and its events reach only its endpoints", async () => {
    const made = await tenantA<{ id: string; tenantId: string }>('POST', '/v1/endpoints', {
      url: 'http://127.0.0.1:9/a',
    });
    expect(made.status).toBe(201);
    expect(made.body.tenantId).toBe('tenant-a');
    const listed = await tenantA<{ items: { id: string }[] }>('GET', '/v1/endpoints');
    expect(listed.body.items.map((e) => e.id)).toEqual([made.body.id]);
    // Naming its own tenant is allowed; the event reaches A's endpoint and neither B's nor the operator's.
    const ev = await tenantA<{ deliveries: { endpointId: string }[] }>('POST', '/v1/events', {
      type: 'invoice.paid',
      payload: { id: 'in_a' },
      tenantId: 'tenant-a',
    });
    expect(ev.status).toBe(202);
    expect(ev.body.deliveries.map((d) => d.endpointId)).toEqual([made.body.id]);
    // The same event from the operator for tenant A reaches the operator's tenant-less endpoint too (as before).
    const fromOperator = await admin()<{ deliveries: { endpointId: string }[] }>('POST', '/v1/events', {
      type: 'invoice.paid',
      payload: { id: 'in_a2' },
      tenantId: 'tenant-a',
    });
    expect(fromOperator.body.deliveries.map((d) => d.endpointId).sort()).toEqual(
      [made.body.id, operatorEndpoint].sort(),
    );
    // A's key sees its own delivery, not the operator's copy.
    const deliveries = await tenantA<{ items: { endpointId: string }[] }>('GET', '/v1/deliveries');
    expect(new Set(deliveries.body.items.map((d) => d.endpointId))).toEqual(new Set([made.body.id]));
  });
});

function forbidden(r: Answer) {
  expect(r.status).toBe(403);
  expect(r.body.error?.code).toBe('forbidden');
}
function notFound(r: Answer) {
  expect(r.status).toBe(404);
}
function createdForA(r: Answer) {
  expect(r.status).toBe(201);
  expect(r.body.details?.tenantId).toBe('tenant-a');
}
function listsNone(id: () => string) {
  return (r: Answer) => {
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body.items)).not.toContain(id());
  };
}
