/** The webhook family's variables (WEBHOOK_*) and its part of the Config. */
import { z } from 'zod';
import { bool, cidrs, csv, duration } from './parse.js';

export const webhookVariables = {
  WEBHOOK_ALLOWED_CIDRS: cidrs.default([]),
  WEBHOOK_HTTPS_ONLY: bool.default(false),
  WEBHOOK_ALLOWED_PORTS: csv
    .pipe(
      z.array(
        z
          .string()
          .regex(/^\d{1,5}$/, { message: 'each entry must be a port number such as 443' })
          .transform(Number)
          .refine((n) => n >= 1 && n <= 65535, { message: 'each port must be between 1 and 65535' }),
      ),
    )
    .default([]),
  WEBHOOK_DISABLE_AFTER: duration.default(5 * 24 * 3600 * 1000),
  WEBHOOK_DELIVERY_PATH: z.enum(['fast', 'classic']).default('fast'),
  WEBHOOK_RECONCILE_INTERVAL: duration.default(30_000),
  WEBHOOK_MAX_PAYLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(256 * 1024),
  WEBHOOK_DLQ_RETENTION: duration.default(30 * 24 * 3600 * 1000),
  WEBHOOK_DLQ_GROWING_THRESHOLD: z.coerce.number().int().min(1).max(1_000_000).default(10),
  WEBHOOK_HISTORY_RETENTION: duration.default(30 * 24 * 3600 * 1000),
  OPSFLOW_CONSOLE_URL: z
    .string()
    .url()
    .refine((u) => /^https?:$/.test(new URL(u).protocol), { message: 'must be an http(s) URL' })
    .optional(),
  WEBHOOK_RECOVER_MAX_DELIVERIES: z.coerce.number().int().min(1).max(10_000_000).default(50_000),
};

export interface WebhooksConfig {
  /** Private/loopback ranges deliveries may reach anyway (everything else private is refused). */
  allowedCidrs: string[];
  /** Refuse `http:` URLs (at create, update and send time). */
  httpsOnly: boolean;
  /** The only ports deliveries may connect to; empty: any. */
  allowedPorts: number[];
  /** An endpoint failing continuously this long is disabled. */
  disableAfterMs: number;
  /**
   * Which workflow new deliveries run: `fast` (webhookDeliveryFast: the first attempt as a local activity,
   * eagerly started where the API shares the workers' connection) or `classic` (webhookDelivery).
   */
  deliveryPath: 'fast' | 'classic';
  maxPayloadBytes: number;
  /** Resolved dead letters older than this are deleted by the daily cleanup. */
  dlqRetentionMs: number;
  /** `dlq.growing` is published when this many more dead letters are open than at the previous redrive run. */
  dlqGrowingThreshold: number;
  /** How often workers start deliveries whose workflow start failed (and how old such a row must be). */
  reconcileIntervalMs: number;
  /** A recover whose window holds more deliveries than this is refused (narrow the window, or run several). */
  recoverMaxDeliveries: number;
  /** The console's address as operators reach it (OPSFLOW_CONSOLE_URL), for links in notifications; none when unset. */
  consoleUrl: string | undefined;
}

type WebhookEnv = z.infer<z.ZodObject<typeof webhookVariables>>;

export function webhooksConfig(e: WebhookEnv): WebhooksConfig {
  return {
    allowedCidrs: e.WEBHOOK_ALLOWED_CIDRS,
    httpsOnly: e.WEBHOOK_HTTPS_ONLY,
    allowedPorts: e.WEBHOOK_ALLOWED_PORTS,
    disableAfterMs: e.WEBHOOK_DISABLE_AFTER,
    deliveryPath: e.WEBHOOK_DELIVERY_PATH,
    maxPayloadBytes: e.WEBHOOK_MAX_PAYLOAD_BYTES,
    dlqRetentionMs: e.WEBHOOK_DLQ_RETENTION,
    dlqGrowingThreshold: e.WEBHOOK_DLQ_GROWING_THRESHOLD,
    reconcileIntervalMs: e.WEBHOOK_RECONCILE_INTERVAL,
    recoverMaxDeliveries: e.WEBHOOK_RECOVER_MAX_DELIVERIES,
    consoleUrl: e.OPSFLOW_CONSOLE_URL,
  };
}
