import { randomBytes } from 'node:crypto';

/** Prefixed, roughly time-ordered ids: `dlv_0mhx2k3a9f1c5e7b2d4a6c8e`. */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;
}
