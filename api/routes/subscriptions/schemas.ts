/** The subscription family's request bodies and answers, as the OpenAPI document and the typed client declare them. */
import { zoneFormat } from '../../../lib/zone-format.js';
import { z } from '@hono/zod-openapi';
import { parseDuration } from '../../../lib/durations.js';
import {
  DEFAULT_REMINDER_OFFSETS,
  DEFAULT_SEND_AT,
  type SubscriptionDetails,
} from '../../../lib/subscriptions/contract.js';

export const IdParam = z.object({
  id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'letters, digits and . _ : - only'),
});
/** Which tenant's subscription an id names (ids are per tenant); a tenant key's own is implied. */
export const TenantQuery = z.object({
  tenantId: z.string().min(1).max(255).optional().openapi({
    description:
      "The subscription's tenant: ids are per tenant. An operator's key may leave it out while only one tenant has the id; a tenant key's tenant is its own",
  }),
});
export const Instant = z.iso.datetime({ offset: true });
// A zone's formatter is made once (zoneFormat caches it): a batch names the same few zones a thousand times.
const TimeZone = z.string().refine((tz) => {
  try {
    zoneFormat(tz, {});
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone such as Europe/Berlin');

const Offsets = z
  .array(z.string())
  .min(1)
  .max(10)
  .transform((steps, ctx) => {
    const parsed = steps.map((s) => parseDuration(s));
    parsed.forEach((ms, i) => {
      if (ms === undefined || ms <= 0)
        ctx.addIssue({ code: 'custom', path: [i], message: `"${steps[i]}" is not a positive duration` });
    });
    return parsed as number[];
  })
  .openapi({ type: 'array', items: { type: 'string' }, example: [...DEFAULT_REMINDER_OFFSETS] });

export const PutBody = z
  .object({
    tenantId: z.string().min(1).max(255),
    email: z.email(),
    name: z.string().max(255).optional(),
    plan: z.string().max(255).optional(),
    expiresAt: Instant,
    timezone: TimeZone.optional(),
    reminderOffsets: Offsets.optional(),
    sendAt: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM')
      .nullable()
      .optional(),
    graceDays: z
      .number()
      .min(0)
      .max(365)
      .optional()
      .openapi({ description: 'Days of grace after expiry (fractions allowed)' }),
    allowPastExpiry: z.boolean().optional().openapi({
      description: 'Create a subscription whose expiry has passed (an import): it goes straight to grace/expired',
    }),
  })
  .strict()
  .openapi('SubscriptionPut');

/** The workflow's details from a PUT body or a batch item (defaults filled in). */
export function toDetails(b: z.output<typeof PutBody>, defaultTimezone: string): SubscriptionDetails {
  return {
    tenantId: b.tenantId,
    email: b.email,
    name: b.name ?? null,
    plan: b.plan ?? null,
    expiresAt: new Date(b.expiresAt).toISOString(),
    timezone: b.timezone ?? defaultTimezone,
    reminderOffsetsMs: b.reminderOffsets ?? DEFAULT_REMINDER_OFFSETS.map((o) => parseDuration(o)!),
    sendAt: b.sendAt === undefined ? DEFAULT_SEND_AT : b.sendAt,
    graceDays: b.graceDays ?? 0,
  };
}

export const SubscriptionStatus = z.enum(['active', 'grace', 'expired', 'canceled']);
const Urgency = z.enum(['medium', 'high', 'critical']);

const detailFields = {
  tenantId: z.string(),
  email: z.string(),
  name: z.string().nullable(),
  plan: z.string().nullable(),
  expiresAt: z.string().openapi({ description: 'ISO 8601' }),
  timezone: z.string(),
  reminderOffsetsMs: z.array(z.number()),
  sendAt: z.string().nullable().openapi({ description: 'Local HH:MM reminders are moved to; null: the exact offset' }),
  graceDays: z.number(),
};

export const SubscriptionDetailsSchema = z.object(detailFields).openapi('SubscriptionDetails');

const NextAction = z
  .discriminatedUnion('kind', [
    z.object({
      kind: z.literal('reminder'),
      milestone: z.string(),
      urgency: Urgency,
      at: z.string(),
      description: z.string().optional(),
    }),
    z.object({ kind: z.literal('grace'), at: z.string(), description: z.string().optional() }),
    z.object({ kind: z.literal('expire'), at: z.string(), description: z.string().optional() }),
    z.object({ kind: z.literal('none'), description: z.string().optional() }),
  ])
  .openapi('SubscriptionNextAction');

export const Subscription = z
  .object({
    subscriptionId: z.string(),
    status: SubscriptionStatus,
    details: SubscriptionDetailsSchema,
    reminders: z.array(
      z.object({
        milestone: z.string(),
        urgency: Urgency,
        sentAt: z.string(),
        outcome: z.enum(['sent', 'skipped']),
      }),
    ),
    nextAction: NextAction,
  })
  .openapi('Subscription');

export const SubscriptionListItem = z
  .object({ id: z.string(), status: SubscriptionStatus, ...detailFields, updatedAt: z.string() })
  .openapi('SubscriptionListItem');
