/**
 * The event catalogue: event types with a description and a JSON Schema (Ajv, strict). A publish of a catalogued
 * type is validated — a payload that misses the schema is a 422 naming the first problem and stores nothing; a
 * deprecated type publishes with a warning; an uncatalogued type publishes as before. A schema change takes effect
 * on the next publish. Refused: bad or reserved names, schemas Ajv will not compile (bad types, unknown keywords,
 * too large), duplicates, unknown types. Real API (app.request), real PostgreSQL (a database of this file's own).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SCHEMA_BYTES } from '../../lib/webhooks/event-catalogue.js';
import { apiCaller } from '../helpers/api.js';
import { databaseUrlOf, dropDatabase, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, testApp, type Harness } from '../helpers/harness.js';

const db = `opsflow_catalogue_${process.pid}`;

interface Entry {
  name: string;
  description: string;
  schema: Record<string, unknown> | null;
  deprecated: boolean;
  deprecationNote: string | null;
}
interface Refusal {
  error: { code: string; message: string; details?: { path: string; message: string }[] };
}

const invoicePaid = {
  type: 'object',
  properties: {
    invoiceId: { type: 'string', minLength: 1 },
    total: { type: 'number', minimum: 0 },
    email: { type: 'string', format: 'email' },
  },
  required: ['invoiceId', 'total'],
  additionalProperties: false,
};

describe('the event catalogue', () => {
  let h: Harness;
  let api: ReturnType<typeof apiCaller>;

  beforeAll(async () => {
    await freshStateDatabase(db);
    h = await createHarness({ DATABASE_URL: databaseUrlOf(db) });
    api = apiCaller(() => testApp(h));
  });
  afterAll(async () => {
    await h?.close();
    await dropDatabase(db);
  });

  const events = async (type: string) =>
    (await h.pool.query('SELECT id FROM opsflow.webhook_events WHERE type = $1', [type])).rowCount;

  it('validates publishes of a catalogued type against its schema; others publish as before', async () => {
    const made = await api<Entry>('POST', '/v1/event-types', {
      name: 'invoice.paid',
      description: 'An invoice was paid in full.',
      schema: invoicePaid,
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body).toMatchObject({ name: 'invoice.paid', deprecated: false, schema: invoicePaid });

    const good = await api<{ eventId: string; warnings?: string[] }>('POST', '/v1/events', {
      type: 'invoice.paid',
      payload: { invoiceId: 'in_1', total: 12.5, email: 'a@example.com' },
    });
    expect(good.status).toBe(202);
    expect(good.body.warnings).toBeUndefined();

    const cases: [unknown, RegExp][] = [
      [{ invoiceId: 'in_2', total: 'twelve' }, /\/total: must be number/],
      [{ invoiceId: 'in_3' }, /must have required property 'total'/],
      [{ invoiceId: 'in_4', total: -1 }, /\/total: must be >= 0/],
      [{ invoiceId: 'in_5', total: 1, email: 'not an email' }, /\/email: must match format "email"/],
      [{ invoiceId: 'in_6', total: 1, extra: true }, /must NOT have additional properties/],
      ['a string', /\/: must be object/],
    ];
    for (const [payload, message] of cases) {
      const bad = await api<Refusal>('POST', '/v1/events', { type: 'invoice.paid', payload });
      expect(bad.status, JSON.stringify(payload)).toBe(422);
      expect(bad.body.error.code).toBe('unprocessable');
      expect(bad.body.error.message).toMatch(message);
      expect(bad.body.error.message).toContain('the schema of invoice.paid');
    }
    // Only the good one was stored.
    expect(await events('invoice.paid')).toBe(1);

    // A type not in the catalogue is not checked.
    const free = await api('POST', '/v1/events', { type: 'invoice.voided', payload: 'anything' });
    expect(free.status).toBe(202);
  });

  it('a schema change applies to the next publish; a deprecated type publishes with a warning', async () => {
    await api('POST', '/v1/event-types', { name: 'user.created', description: 'A user signed up.' });
    expect((await api('POST', '/v1/events', { type: 'user.created', payload: { id: 7 } })).status).toBe(202);
    const tightened = await api<Entry>('PATCH', '/v1/event-types/user.created', {
      schema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
    });
    expect(tightened.status).toBe(200);
    expect((await api('POST', '/v1/events', { type: 'user.created', payload: { id: 7 } })).status).toBe(422);
    expect((await api('POST', '/v1/events', { type: 'user.created', payload: { id: 'u7' } })).status).toBe(202);
    const loosened = await api<Entry>('PATCH', '/v1/event-types/user.created', { schema: null });
    expect(loosened.body.schema).toBeNull();
    expect((await api('POST', '/v1/events', { type: 'user.created', payload: { id: 7 } })).status).toBe(202);

    const deprecated = await api<Entry>('PATCH', '/v1/event-types/user.created', {
      deprecated: true,
      deprecationNote: 'use account.created',
    });
    expect(deprecated.body).toMatchObject({ deprecated: true, deprecationNote: 'use account.created' });
    const warned = await api<{ eventId: string; warnings?: string[] }>('POST', '/v1/events', {
      type: 'user.created',
      payload: {},
    });
    expect(warned.status).toBe(202);
    expect(warned.body.warnings).toEqual(['event type user.created is deprecated: use account.created']);

    // The catalogue as customers read it: by name; without the deprecated ones on request; one entry.
    const all = await api<{ items: Entry[] }>('GET', '/v1/event-types');
    expect(all.body.items.map((e) => e.name)).toEqual(['invoice.paid', 'user.created']);
    const current = await api<{ items: Entry[] }>('GET', '/v1/event-types?deprecated=false');
    expect(current.body.items.map((e) => e.name)).toEqual(['invoice.paid']);
    const paged = await api<{ items: Entry[]; nextCursor: string | null }>('GET', '/v1/event-types?limit=1');
    expect(paged.body.nextCursor).toBe('invoice.paid');
    const next = await api<{ items: Entry[] }>('GET', `/v1/event-types?limit=1&cursor=${paged.body.nextCursor}`);
    expect(next.body.items.map((e) => e.name)).toEqual(['user.created']);
    expect((await api<Entry>('GET', '/v1/event-types/invoice.paid')).body.schema).toEqual(invoicePaid);
  });

  it('refuses bad names, reserved ones, schemas Ajv will not compile, duplicates and unknown types', async () => {
    const bad: [unknown, number, RegExp | undefined][] = [
      [{ name: 'a b', description: 'x' }, 400, undefined],
      [{ name: 'order.placed' }, 400, undefined],
      [{ name: 'order.placed', description: 'x', schema: 'object' }, 400, undefined],
      [{ name: 'order.placed', description: 'x', extra: 1 }, 400, undefined],
      [{ name: 'backup.verified', description: 'mine' }, 403, /reserved/],
      [{ name: 'order.placed', description: 'x', schema: { type: 'objekt' } }, 422, /not a JSON Schema/],
      [{ name: 'order.placed', description: 'x', schema: { type: 'object', colour: 'red' } }, 422, /unknown keyword/],
      [
        {
          name: 'order.placed',
          description: 'x',
          schema: { type: 'object', description: 'x'.repeat(MAX_SCHEMA_BYTES) },
        },
        422,
        /larger than/,
      ],
      [{ name: 'invoice.paid', description: 'again' }, 409, /already in the catalogue/],
    ];
    for (const [body, status, message] of bad) {
      const res = await api<Refusal>('POST', '/v1/event-types', body);
      expect(res.status, JSON.stringify(body).slice(0, 200)).toBe(status);
      if (message) expect(res.body.error.message).toMatch(message);
    }
    expect((await api('GET', '/v1/event-types/order.placed')).status).toBe(404);
    expect((await api('PATCH', '/v1/event-types/order.placed', { description: 'x' })).status).toBe(404);
    const badPatch = await api<Refusal>('PATCH', '/v1/event-types/invoice.paid', { schema: { type: 'objekt' } });
    expect(badPatch.status).toBe(422);
    // The refused change left the entry as it was.
    expect((await api<Entry>('GET', '/v1/event-types/invoice.paid')).body.schema).toEqual(invoicePaid);
  });
});
