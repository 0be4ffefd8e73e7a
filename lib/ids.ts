import { randomBytes } from 'node:crypto';

/**
 * Prefixed ids made in the process (`msg_`, `key_`, `ep_`, `dl_`): milliseconds in base 36, then 64 random bits,
 * so ids made a millisecond or more apart sort by creation (`ep_0mhx2k3a9f1c5e7b2d4a6c8e`). Delivery ids (`dlv_`)
 * are made in SQL by the fan-out INSERT (lib/webhooks/service.ts) and are random, not time-ordered.
 */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;
}
