/**
 * The event catalogue: the event types an operator documents for its customers, with an optional JSON Schema that
 * publishes are validated against (lib/webhooks/event-catalogue.ts). Every key may read it (customers' tenant keys
 * too: it is what they integrate against); only the operator's keys change it.
 */
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { actorLabel } from '../../../lib/keys/scopes.js';
import type { EventCatalogue } from '../../../lib/webhooks/event-catalogue.js';
import { actorOf, keyTenant } from '../../auth.js';
import { ApiError } from '../../errors.js';
import { json, Limit } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';
import { EventType } from './shared.js';

const Schema = z.record(z.string(), z.unknown()).openapi({
  description:
    'A JSON Schema (draft 2020-12) the payload of every publish of this type must meet; checked by Ajv in strict mode when written (unknown keywords are refused), at most 64 KiB',
});

const EventTypeEntry = z
  .object({
    name: z.string(),
    description: z.string(),
    schema: z.record(z.string(), z.unknown()).nullable(),
    deprecated: z.boolean(),
    deprecationNote: z.string().nullable(),
    createdBy: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('EventTypeEntry');

const EventTypeCreate = z
  .object({
    name: EventType,
    description: z.string().min(1).max(2000),
    schema: Schema.optional(),
    deprecated: z.boolean().optional(),
    deprecationNote: z.string().max(500).optional(),
  })
  .strict()
  .openapi('EventTypeCreate');

const EventTypePatch = z
  .object({
    description: z.string().min(1).max(2000).optional(),
    schema: Schema.nullable().optional(),
    deprecated: z.boolean().optional(),
    deprecationNote: z.string().max(500).nullable().optional(),
  })
  .strict()
  .openapi('EventTypePatch');

const NameParam = z.object({ name: EventType });

/** The catalogue is the operator's: a tenant key reads it, never writes it. */
function operatorOnly(c: Context) {
  const tenant = keyTenant(c);
  if (tenant) {
    throw new ApiError(403, 'forbidden', `This API key is tenant ${tenant}'s: the event catalogue is the operator's`);
  }
}

export function eventTypeRoutes(catalogue: EventCatalogue) {
  const router = newRouter();

  router.openapi(
    route('endpoints:write', {
      method: 'post',
      path: '/event-types',
      operationId: 'createEventType',
      summary: 'Add an event type to the catalogue, with a description and an optional JSON Schema',
      request: { body: { required: true, ...json(EventTypeCreate) } },
      responses: { 201: { description: 'Added', ...json(EventTypeEntry) } },
    }),
    async (c) => {
      operatorOnly(c);
      return c.json(await catalogue.create(c.req.valid('json'), actorLabel(actorOf(c))), 201);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/event-types',
      operationId: 'listEventTypes',
      summary: 'The event catalogue, by name: what customers may receive, with schemas',
      request: {
        query: z.object({
          deprecated: z.enum(['true', 'false']).optional(),
          cursor: EventType.optional().openapi({ description: 'The last name of the previous page' }),
          limit: Limit,
        }),
      },
      responses: {
        200: {
          description: 'A page of the catalogue',
          ...json(z.object({ items: z.array(EventTypeEntry), nextCursor: z.string().nullable() })),
        },
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const deprecated = q.deprecated === undefined ? undefined : q.deprecated === 'true';
      return c.json(await catalogue.list({ deprecated }, { after: q.cursor, limit: q.limit }), 200);
    },
  );

  router.openapi(
    route('read', {
      method: 'get',
      path: '/event-types/{name}',
      operationId: 'getEventType',
      summary: 'One event type of the catalogue',
      request: { params: NameParam },
      responses: { 200: { description: 'The event type', ...json(EventTypeEntry) } },
    }),
    async (c) => c.json(await catalogue.get(c.req.valid('param').name), 200),
  );

  router.openapi(
    route('endpoints:write', {
      method: 'patch',
      path: '/event-types/{name}',
      operationId: 'updateEventType',
      summary: 'Change an event type: its description, its schema (null drops it), deprecate it',
      request: { params: NameParam, body: { required: true, ...json(EventTypePatch) } },
      responses: { 200: { description: 'The event type', ...json(EventTypeEntry) } },
    }),
    async (c) => {
      operatorOnly(c);
      return c.json(await catalogue.update(c.req.valid('param').name, c.req.valid('json')), 200);
    },
  );

  return router;
}
