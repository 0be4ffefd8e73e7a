/** What the webhook resources share: path, query and answer schemas. */
import { z } from '@hono/zod-openapi';
import { parseDuration } from '../../../lib/durations.js';
import { DEFAULT_RETRY_SCHEDULE } from '../../../lib/webhooks/contract.js';
import { EVENT_TYPE_PATTERN } from '../../../lib/webhooks/event-types.js';

export const EventType = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');

/** What an endpoint subscribes to: an event type, a prefix (`invoice.*`) or `*`. */
export const EventTypePattern = z
  .string()
  .min(1)
  .max(130)
  .regex(EVENT_TYPE_PATTERN, 'an event type, a prefix ending in .* (invoice.*), or *')
  .openapi({ example: 'invoice.*' });

/** Channels: an endpoint with some receives only events published on one of them. */
export const Channels = z
  .array(
    z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only'),
  )
  .min(1)
  .max(10);

/** How deep a payload may nest (objects and arrays): far beyond any real event, far below a stack overflow. */
export const MAX_PAYLOAD_DEPTH = 64;

/** The nesting depth of a parsed JSON value, without recursion (a hostile payload can nest 500k levels). */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_PAYLOAD_DEPTH) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** One object a payload must contain (PostgreSQL's jsonb containment: `@>`). */
const FilterObject = z
  .record(z.string(), z.unknown())
  .refine((o) => Object.keys(o).length > 0, 'an empty object matches every payload: leave the filter out')
  .refine((o) => JSON.stringify(o).length <= 4096, 'at most 4096 bytes of JSON')
  .refine((o) => nestingDepth(o) <= 8, 'nested at most 8 levels');

/**
 * An endpoint's payload filter: an object, or a list of objects (any of them). An event reaches the endpoint when
 * its payload contains one: every key of the object with an equal value, nested objects likewise, an array value
 * matching when the payload's array contains its elements.
 */
export const PayloadFilter = z
  .union([FilterObject, z.array(FilterObject).min(1).max(10)])
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .openapi({
    description:
      'Deliver only events whose payload contains this object (or one of these objects): {"region": "eu"}, [{"tier": "gold"}, {"amount": 0}], {"items": [{"sku": "A"}]} — PostgreSQL jsonb containment (@>)',
  });

/** Waits before each attempt, as durations ("0s", "30s", "5m"); parsed to milliseconds. */
export const RetrySchedule = z
  .array(z.string())
  .min(1)
  .max(20)
  .transform((steps, ctx) => {
    const parsed = steps.map((s) => parseDuration(s));
    parsed.forEach((ms, i) => {
      if (ms === undefined) ctx.addIssue({ code: 'custom', path: [i], message: `"${steps[i]}" is not a duration` });
      else if (ms > 7 * 24 * 3600 * 1000) ctx.addIssue({ code: 'custom', path: [i], message: 'at most 7d' });
    });
    return parsed as number[];
  })
  .openapi({ type: 'array', items: { type: 'string' }, example: [...DEFAULT_RETRY_SCHEDULE] });

export const IdParam = z.object({ id: z.string().min(1).max(100) });
export const DateParam = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

export const DeliveryStatus = z.enum(['pending', 'retrying', 'delivered', 'dead_lettered', 'discarded']);

const deliveryFields = {
  id: z.string(),
  eventId: z.string(),
  endpointId: z.string(),
  eventType: z.string(),
  tenantId: z.string().nullable(),
  status: DeliveryStatus,
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.iso.datetime().nullable(),
  deliveredAt: z.iso.datetime().nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
};

export const Delivery = z
  .object({ ...deliveryFields, attempts: z.number().int().openapi({ description: 'Attempts so far' }) })
  .openapi('Delivery');

const Attempt = z
  .object({
    attemptNo: z.number().int(),
    at: z.iso.datetime(),
    statusCode: z.number().int().nullable(),
    latencyMs: z.number(),
    error: z.string().nullable(),
    responseBody: z.string().nullable(),
    outcome: z.string(),
  })
  .openapi('DeliveryAttempt');

const DeliveryLiveState = z
  .object({
    phase: z.enum(['waiting', 'attempting', 'done']),
    attempts: z.number().int(),
    nextAttemptAt: z.string().optional(),
    lastStatusCode: z.number().int().optional(),
    lastError: z.string().optional(),
  })
  .openapi('DeliveryLiveState');

export const DeliveryDetail = z
  .object({
    ...deliveryFields,
    attempts: z.array(Attempt),
    live: DeliveryLiveState.nullable().openapi({ description: 'The delivery workflow’s state while it runs' }),
  })
  .openapi('DeliveryDetail');

export const DeadLetter = z
  .object({
    id: z.string(),
    deliveryId: z.string(),
    endpointId: z.string(),
    eventType: z.string(),
    reason: z.string(),
    createdAt: z.iso.datetime(),
  })
  .openapi('DeadLetter');

const deliveryCounts = z
  .partialRecord(DeliveryStatus, z.number().int())
  .openapi({ description: 'Its deliveries by status now (statuses with none are left out)' });

const eventFields = {
  id: z.string(),
  type: z.string(),
  tenantId: z.string().nullable(),
  idempotencyKey: z.string().nullable(),
  channels: z.array(z.string()).nullable(),
  retrySchedule: z
    .array(z.string())
    .nullable()
    .openapi({ description: "The event's own retry schedule, if it was published with one" }),
  createdAt: z.iso.datetime(),
  deliveryCounts,
};

export const Event = z.object(eventFields).openapi('Event');

export const EventDetail = z
  .object({
    ...eventFields,
    payload: z.unknown().openapi({ description: 'What the event carried (the body’s `data`)' }),
    deliveries: z.array(Delivery).openapi({ description: 'Every delivery it made, oldest first' }),
  })
  .openapi('EventDetail');
