/** The value types of opsflow's environment variables: each parses a string and names its rule when it cannot. */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from '../durations.js';

export const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

export const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
);

export const port = z.coerce.number().int().min(1).max(65535);

export const duration = z.string().transform((v, ctx) => {
  const parsed = parseDuration(v);
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration such as 30s, 15m, 6h or 5d' });
    return z.NEVER;
  }
  return parsed;
});

/** "10.0.0.0/8, 127.0.0.1/32, fd00::/8" → validated CIDR strings. */
export const cidrs = csv.pipe(
  z.array(
    z.string().refine(
      (c) => {
        const [addr, bits, extra] = c.split('/');
        if (!addr || bits === undefined || extra !== undefined || !/^\d{1,3}$/.test(bits)) return false;
        const family = isIP(addr);
        return family !== 0 && Number(bits) <= (family === 4 ? 32 : 128);
      },
      { message: 'each entry must be a CIDR such as 10.0.0.0/8 or fd00::/8' },
    ),
  ),
);

export const timezone = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be an IANA time zone such as UTC or Europe/Berlin' },
);

export const postgresUrl = z
  .string()
  .url({ message: 'must be a URL such as postgres://user@host:5432/db' })
  .refine((u) => /^postgres(ql)?:$/.test(new URL(u).protocol), { message: 'must start with postgres://' })
  .refine((u) => new URL(u).pathname.length > 1, { message: 'must name a database' });

export const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:$/.test(new URL(u).protocol), { message: 'must be an http(s) URL' });
