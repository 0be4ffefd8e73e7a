/**
 * Routing by event type: an endpoint subscribes to exact types, prefixes (`invoice.*`) or everything (`*`); the
 * fan-out delivers each event to exactly the endpoints whose list takes it (a prefix keeps its dot, so
 * `invoice.*` does not take `invoicex.paid` nor `invoice`). The rule the API checks (a PagerDuty endpoint must
 * take some event PagerDuty receives) and the one the fan-out's SQL applies are the same. Bad patterns are 400.
 * Real API (app.request), real PostgreSQL (a state database of this file's own), Temporal (the harness).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventTypeMatchSql, matchesType } from '../../lib/webhooks/event-types.js';
import { apiCaller } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, testApp, type Harness } from '../helpers/harness.js';

const db = `opsflow_routing_${process.pid}`;

describe('routing by event type', () => {
  let h: Harness;
  let api: ReturnType<typeof apiCaller>;
  const ep: Record<string, string> = {};

  beforeAll(async () => {
    await freshStateDatabase(db);
    h = await createHarness({ DATABASE_URL: databaseUrlOf(db), WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    api = apiCaller(() => testApp(h));
    const subscriptions: Record<string, string[] | undefined> = {
      invoices: ['invoice.*'],
      everything: ['*'],
      paidOnly: ['invoice.paid'],
      mixed: ['user.*', 'invoice.void'],
      unlisted: undefined,
    };
    for (const [name, eventTypes] of Object.entries(subscriptions)) {
      const made = await api<{ id: string; eventTypes: string[] | null }>('POST', '/v1/endpoints', {
        url: `http://127.0.0.1:9/${name}`,
        ...(eventTypes ? { eventTypes } : {}),
      });
      expect(made.status, JSON.stringify(made.body)).toBe(201);
      expect(made.body.eventTypes).toEqual(eventTypes ?? null);
      ep[name] = made.body.id;
    }
  });
  afterAll(async () => {
    await h?.close();
    await dropDatabase(db);
  });

  const reached = async (type: string, channels?: string[], payload: unknown = {}) => {
    const res = await api<{ deliveries: { endpointId: string }[] }>('POST', '/v1/events', {
      type,
      payload,
      ...(channels ? { channels } : {}),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const names = Object.fromEntries(Object.entries(ep).map(([name, id]) => [id, name]));
    return res.body.deliveries.map((d) => names[d.endpointId]).sort();
  };

  it('delivers each event to exactly the endpoints whose types take it', async () => {
    expect(await reached('invoice.paid')).toEqual(['everything', 'invoices', 'paidOnly', 'unlisted']);
    expect(await reached('invoice.void')).toEqual(['everything', 'invoices', 'mixed', 'unlisted']);
    expect(await reached('invoice.refund.partial')).toEqual(['everything', 'invoices', 'unlisted']);
    expect(await reached('user.created')).toEqual(['everything', 'mixed', 'unlisted']);
    expect(await reached('invoicex.paid')).toEqual(['everything', 'unlisted']);
    expect(await reached('invoice')).toEqual(['everything', 'unlisted']);
  });

  it('the SQL the fan-out uses and the rule the API checks agree', async () => {
    const patterns = ['*', 'invoice.*', 'invoice.paid', 'a.b.*', 'x'];
    const types = ['invoice.paid', 'invoice', 'invoicex.paid', 'a.b.c', 'a.b', 'a.bc', 'x', 'x.y'];
    for (const p of patterns) {
      for (const t of types) {
        const { rows } = await h.pool.query<{ m: boolean }>(
          `SELECT ${eventTypeMatchSql(2)} AS m FROM (SELECT $1::text[] AS event_types) ep`,
          [[p], t],
        );
        expect(rows[0]!.m, `${p} ~ ${t}`).toBe(matchesType(p, t));
      }
    }
    expect(matchesType('invoice.*', 'invoice.paid')).toBe(true);
    expect(matchesType('invoice.*', 'invoicex.paid')).toBe(false);
  });

  it('refuses patterns it does not know (400) and a PagerDuty endpoint none of whose patterns PagerDuty receives (422)', async () => {
    for (const eventTypes of [['invoice*'], ['*.paid'], ['in*voice.*'], ['**'], ['a b'], ['']]) {
      const res = await api<{ error: { code: string } }>('POST', '/v1/endpoints', {
        url: 'http://127.0.0.1:9/bad',
        eventTypes,
      });
      expect(res.status, JSON.stringify(eventTypes)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    const patched = await api('PATCH', `/v1/endpoints/${ep.invoices}`, { eventTypes: ['invoice*'] });
    expect(patched.status).toBe(400);
    const pd = (eventTypes: string[]) =>
      api<{ error: { code: string } }>('POST', '/v1/endpoints', {
        url: 'http://127.0.0.1:9/pd',
        format: 'pagerduty',
        routingKey: 'R0123456789abcdef0123456789abcde',
        eventTypes,
      });
    expect((await pd(['invoice.*'])).status).toBe(422);
    expect((await pd(['backup.*'])).status).toBe(201);
    expect((await pd(['*'])).status).toBe(201);
  });

  it('channels: an endpoint with channels takes only events on one of them; one without takes any', async () => {
    for (const [name, channels] of [
      ['eu', ['eu']],
      ['euus', ['eu', 'us']],
    ] as const) {
      const made = await api<{ id: string; channels: string[] | null }>('POST', '/v1/endpoints', {
        url: `http://127.0.0.1:9/${name}`,
        eventTypes: ['order.*'],
        channels,
      });
      expect(made.status).toBe(201);
      expect(made.body.channels).toEqual(channels);
      ep[name] = made.body.id;
    }
    expect(await reached('order.created', ['eu'])).toEqual(['eu', 'euus', 'everything', 'unlisted']);
    expect(await reached('order.created', ['us'])).toEqual(['euus', 'everything', 'unlisted']);
    expect(await reached('order.created', ['apac', 'us'])).toEqual(['euus', 'everything', 'unlisted']);
    expect(await reached('order.created', ['apac'])).toEqual(['everything', 'unlisted']);
    expect(await reached('order.created')).toEqual(['everything', 'unlisted']);
    // The event keeps its channels.
    const sent = await api<{ eventId: string }>('POST', '/v1/events', {
      type: 'order.paid',
      payload: {},
      channels: ['eu'],
    });
    const shown = await api<{ channels: string[] | null }>('GET', `/v1/events/${sent.body.eventId}`);
    expect(shown.body.channels).toEqual(['eu']);
    // Channels cleared: the endpoint takes any event again.
    const cleared = await api<{ channels: string[] | null }>('PATCH', `/v1/endpoints/${ep.eu}`, { channels: null });
    expect(cleared.body.channels).toBeNull();
    expect(await reached('order.created')).toEqual(['eu', 'everything', 'unlisted']);

    for (const channels of [[], ['a b'], ['x'.repeat(65)]]) {
      const bad = await api('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/bad', channels });
      expect(bad.status, JSON.stringify(channels)).toBe(400);
      expect((await api('POST', '/v1/events', { type: 'order.created', payload: {}, channels })).status).toBe(400);
    }
  });

  it('payload filters: an event reaches a filtered endpoint when its payload contains one of the objects', async () => {
    const filters: Record<string, unknown> = {
      euOnly: { region: 'eu' },
      euOrGoldUs: [{ region: 'eu' }, { region: 'us', tier: 'gold' }],
      skuA: { items: [{ sku: 'A' }] },
      nested: { customer: { plan: 'pro' } },
    };
    for (const [name, filter] of Object.entries(filters)) {
      const made = await api<{ id: string; filter: unknown }>('POST', '/v1/endpoints', {
        url: `http://127.0.0.1:9/${name}`,
        eventTypes: ['cart.*'],
        filter,
      });
      expect(made.status, JSON.stringify(made.body)).toBe(201);
      expect(made.body.filter).toEqual(Array.isArray(filter) ? filter : [filter]);
      ep[name] = made.body.id;
    }
    const to = (payload: unknown) => reached('cart.updated', undefined, payload);
    const always = ['everything', 'unlisted'];
    expect(await to({ region: 'eu', tier: 'basic' })).toEqual(['euOnly', 'euOrGoldUs', ...always].sort());
    expect(await to({ region: 'us', tier: 'gold' })).toEqual(['euOrGoldUs', ...always].sort());
    expect(await to({ region: 'us', tier: 'basic' })).toEqual(always);
    expect(await to({ items: [{ sku: 'B' }, { sku: 'A', qty: 2 }] })).toEqual(['skuA', ...always].sort());
    expect(await to({ items: [{ sku: 'B' }] })).toEqual(always);
    expect(await to({ customer: { plan: 'pro', seats: 3 } })).toEqual(['nested', ...always].sort());
    expect(await to({ customer: { plan: 'free' } })).toEqual(always);
    expect(await to({ region: 'EU' })).toEqual(always); // values compare exactly
    expect(await to('a string payload')).toEqual(always);
    expect(await to([{ region: 'eu' }])).toEqual(always);

    // Cleared: every payload again.
    const cleared = await api<{ filter: unknown }>('PATCH', `/v1/endpoints/${ep.euOnly}`, { filter: null });
    expect(cleared.body.filter).toBeNull();
    expect(await to({ region: 'us' })).toEqual(['euOnly', ...always].sort());

    for (const filter of [
      {},
      [],
      [{}],
      'region=eu',
      [1],
      { deep: { a: { b: { c: { d: { e: { f: { g: { h: 1 } } } } } } } } },
    ]) {
      const bad = await api<{ error: { code: string } }>('POST', '/v1/endpoints', {
        url: 'http://127.0.0.1:9/bad',
        filter,
      });
      expect(bad.status, JSON.stringify(filter)).toBe(400);
      expect(bad.body.error.code).toBe('validation_failed');
    }
  });
});
