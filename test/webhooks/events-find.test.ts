/**
 * Finding what was sent: GET /v1/events (newest first; by type or type prefix, tenant and time; keyset pages) and
 * GET /v1/events/{id} (its payload and every delivery it made, with their status). A tenant key sees only its
 * tenant's events. Bad filters answer 400 with the envelope; an unknown event 404. Real API (app.request), real
 * PostgreSQL (a state database of this file's own) and Temporal (the harness).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiCaller } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, testApp, type Harness } from '../helpers/harness.js';

const db = `opsflow_events_find_${process.pid}`;

interface EventItem {
  id: string;
  type: string;
  tenantId: string | null;
  idempotencyKey: string | null;
  createdAt: string;
  deliveryCounts: Record<string, number>;
}
interface Page {
  items: EventItem[];
  nextCursor: string | null;
}

describe('finding events', () => {
  let h: Harness;
  let api: ReturnType<typeof apiCaller>;
  const ids: Record<string, string> = {};
  const endpoints: Record<string, string> = {};
  let between: string;

  beforeAll(async () => {
    await freshStateDatabase(db);
    h = await createHarness({ DATABASE_URL: databaseUrlOf(db), WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    api = apiCaller(() => testApp(h));
    const ep = async (name: string, body: object) => {
      const made = await api<{ id: string }>('POST', '/v1/endpoints', { url: `http://127.0.0.1:9/${name}`, ...body });
      expect(made.status).toBe(201);
      endpoints[name] = made.body.id;
    };
    await ep('operator', { eventTypes: ['invoice.paid', 'user.created'] });
    await ep('acme', { eventTypes: ['invoice.paid', 'invoice.void'], tenantId: 'acme' });
    const publish = async (name: string, body: object) => {
      const res = await api<{ eventId: string }>('POST', '/v1/events', body);
      expect(res.status).toBe(202);
      ids[name] = res.body.eventId;
      await new Promise((r) => setTimeout(r, 15)); // distinct created_at, so "newest first" is a fact to check
    };
    await publish('paid', { type: 'invoice.paid', payload: { invoice: 'in_1', amount: 42 } });
    await publish('user', { type: 'user.created', payload: { user: 'u_1' } });
    between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 15));
    await publish('acmeVoid', { type: 'invoice.void', payload: { invoice: 'in_2' }, tenantId: 'acme' });
    await publish('acmePaid', {
      type: 'invoice.paid',
      payload: { invoice: 'in_3' },
      tenantId: 'acme',
      idempotencyKey: 'acme-in_3',
    });
  });
  afterAll(async () => {
    await h?.close();
    await dropDatabase(db);
  });

  const list = async (query: string, key?: ReturnType<typeof apiCaller>) =>
    (key ?? api)<Page>('GET', `/v1/events${query}`);

  it('lists every event newest first, with its deliveries by status; pages by cursor without gaps or repeats', async () => {
    const all = await list('');
    expect(all.status).toBe(200);
    expect(all.body.items.map((e) => e.id)).toEqual([ids.acmePaid, ids.acmeVoid, ids.user, ids.paid]);
    const acmePaid = all.body.items[0]!;
    expect(acmePaid).toMatchObject({ type: 'invoice.paid', tenantId: 'acme', idempotencyKey: 'acme-in_3' });
    // A tenant's event reaches its tenant's endpoints and the operator's: two pending deliveries (no worker here).
    expect(acmePaid.deliveryCounts).toEqual({ pending: 2 });
    expect(all.body.items[3]!.deliveryCounts).toEqual({ pending: 1 }); // the operator's invoice.paid only

    const first = await list('?limit=3');
    expect(first.body.items).toHaveLength(3);
    expect(first.body.nextCursor).not.toBeNull();
    const second = await list(`?limit=3&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((e) => e.id)).toEqual([ids.paid]);
    expect(second.body.nextCursor).toBeNull();
  });

  it('filters by exact type, type prefix, tenant and time window', async () => {
    const idsOf = async (q: string) => (await list(q)).body.items.map((e) => e.id);
    expect(await idsOf('?type=invoice.paid')).toEqual([ids.acmePaid, ids.paid]);
    expect(await idsOf('?type=invoice.*')).toEqual([ids.acmePaid, ids.acmeVoid, ids.paid]);
    expect(await idsOf('?type=nothing.*')).toEqual([]);
    expect(await idsOf('?tenantId=acme')).toEqual([ids.acmePaid, ids.acmeVoid]);
    expect(await idsOf(`?since=${encodeURIComponent(between)}`)).toEqual([ids.acmePaid, ids.acmeVoid]);
    expect(await idsOf(`?until=${encodeURIComponent(between)}`)).toEqual([ids.user, ids.paid]);
    expect(await idsOf(`?since=${encodeURIComponent(between)}&type=invoice.void`)).toEqual([ids.acmeVoid]);
  });

  it('shows one event with its payload and each delivery', async () => {
    const one = await api<{
      id: string;
      payload: unknown;
      deliveryCounts: Record<string, number>;
      deliveries: { id: string; endpointId: string; status: string; eventId: string }[];
    }>('GET', `/v1/events/${ids.acmePaid}`);
    expect(one.status).toBe(200);
    expect(one.body.payload).toEqual({ invoice: 'in_3' });
    expect(one.body.deliveries.map((d) => d.endpointId).sort()).toEqual([endpoints.acme!, endpoints.operator!].sort());
    expect(one.body.deliveries.every((d) => d.status === 'pending' && d.eventId === ids.acmePaid)).toBe(true);
  });

  it('refuses bad filters with the envelope (400) and answers 404 for an unknown event', async () => {
    for (const q of ['?type=invoice*', '?type=a%20b', '?since=yesterday', '?limit=0', '?cursor=garbage']) {
      const res = await list(q);
      expect(res.status, q).toBe(400);
      expect((res.body as unknown as { error: { code: string } }).error.code, q).toBe('validation_failed');
    }
    const missing = await api<{ error: { code: string } }>('GET', '/v1/events/evt_nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  it("a tenant key sees only its tenant's events: others' are not listed and answer 404; naming another is 403", async () => {
    const key = await api<{ key: string }>('POST', '/v1/api-keys', {
      name: 'acme-reader',
      scopes: ['read'],
      tenantId: 'acme',
    });
    expect(key.status).toBe(201);
    const acme = apiCaller(() => testApp(h), key.body.key);
    expect((await list('', acme)).body.items.map((e) => e.id)).toEqual([ids.acmePaid, ids.acmeVoid]);
    expect((await list('?type=invoice.paid', acme)).body.items.map((e) => e.id)).toEqual([ids.acmePaid]);
    expect((await list('?tenantId=other', acme)).status).toBe(403);
    expect((await acme('GET', `/v1/events/${ids.paid}`)).status).toBe(404);
    expect((await acme('GET', `/v1/events/${ids.acmeVoid}`)).status).toBe(200);
    // A read key without a tenant sees everything; no key at all sees nothing.
    expect((await testApp(h).request('/v1/events')).status).toBe(401);
  });
});
