/**
 * SSRF guard and transport policy for webhook URLs. Only http(s) (only https with WEBHOOK_HTTPS_ONLY), only
 * the ports in WEBHOOK_ALLOWED_PORTS when it is set; the host is resolved and every address checked; loopback,
 * private, link-local (incl. cloud metadata 169.254.169.254), CGNAT, multicast, reserved, documentation,
 * IPv6 ULA/link-local, the IPv4-translated range ::ffff:0:0:0/96, local-use NAT64 64:ff9b:1::/48 and IPv4
 * addresses embedded in IPv6 (mapped, translated, compatible, NAT64, 6to4) are refused
 * unless inside WEBHOOK_ALLOWED_CIDRS. The caller connects to the address returned here, so a second DNS
 * answer (rebinding) can never redirect the request.
 *
 * Odd IPv4 spellings (decimal 2130706433, octal 0177.0.0.1, hex 0x7f.1) are normalised by the WHATWG URL
 * parser before they get here, so they are checked as the address they really are.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

const blockedV4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
];
const blockedV6 = [
  '::/128',
  '::1/128',
  '::ffff:0:0:0/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/23',
  '2001:db8::/32',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
];

const blocked = new BlockList();
for (const c of blockedV4) {
  const [net, bits] = c.split('/') as [string, string];
  blocked.addSubnet(net, Number(bits), 'ipv4');
}
for (const c of blockedV6) {
  const [net, bits] = c.split('/') as [string, string];
  blocked.addSubnet(net, Number(bits), 'ipv6');
}

export function allowList(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [net, bits] = c.split('/') as [string, string];
    list.addSubnet(net, Number(bits), isIP(net) === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** Expands an IPv6 address to its eight 16-bit groups. */
function groups(v6: string): number[] {
  let addr = v6.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (dotted?.[1]) {
    const o = dotted[1].split('.').map(Number) as [number, number, number, number];
    addr =
      addr.slice(0, -dotted[1].length) + `${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head, tail] = addr.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}

const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any. */
export function embeddedIPv4(v6: string): string | undefined {
  const g = groups(v6);
  if (g.length !== 8) return undefined;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [number, number, number, number, number, number, number, number];
  const zeroTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroTo(5) && g5 === 0xffff) return v4(g6, g7); // ::ffff:a.b.c.d
  if (zeroTo(4) && g4 === 0xffff && g5 === 0) return v4(g6, g7); // ::ffff:0:a.b.c.d (IPv4-translated)
  if (zeroTo(6) && (g6 !== 0 || g7 > 1)) return v4(g6, g7); // ::a.b.c.d (deprecated compatible)
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return v4(g6, g7); // NAT64
  if (g0 === 0x2002) return v4(g1, g2); // 6to4
  return undefined;
}

export interface AddressVerdict {
  ok: boolean;
  reason?: string;
}

export function checkAddress(address: string, allowed?: BlockList): AddressVerdict {
  const family = isIP(address);
  if (family === 0) return { ok: false, reason: `not an IP address: ${address}` };
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (allowed?.check(address, type)) return { ok: true };
  if (family === 6) {
    const inner = embeddedIPv4(address);
    if (inner) {
      if (allowed?.check(inner, 'ipv4')) return { ok: true };
      if (blocked.check(inner, 'ipv4')) return { ok: false, reason: `${address} embeds the private address ${inner}` };
    }
  }
  if (blocked.check(address, type))
    return { ok: false, reason: `${address} is a private, loopback or reserved address` };
  return { ok: true };
}

/** Resolves a host name to all its addresses (node's `dns.lookup` by default). */
export type HostResolver = (host: string) => Promise<{ address: string; family: number }[]>;

/** What a webhook (or a caller's health-check) URL must satisfy, from WEBHOOK_* settings. */
export interface TransportPolicy {
  /** Private ranges that may be reached anyway (WEBHOOK_ALLOWED_CIDRS). */
  allowed?: BlockList;
  /** Refuse http: (WEBHOOK_HTTPS_ONLY). */
  httpsOnly?: boolean;
  /** The only ports allowed; empty or unset: any (WEBHOOK_ALLOWED_PORTS). */
  allowedPorts?: readonly number[];
  resolve?: HostResolver;
}

export function transportPolicy(
  settings: { allowedCidrs: string[]; httpsOnly: boolean; allowedPorts: number[] },
  resolve?: HostResolver,
): TransportPolicy {
  return {
    allowed: allowList(settings.allowedCidrs),
    httpsOnly: settings.httpsOnly,
    allowedPorts: settings.allowedPorts,
    ...(resolve ? { resolve } : {}),
  };
}

const systemResolver: HostResolver = (host) => lookup(host, { all: true, verbatim: true });

export interface ResolvedTarget {
  url: URL;
  /** The checked address to connect to. */
  address: string;
  family: 4 | 6;
}

export class UrlRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UrlRefusedError';
  }
}

/** Validates the URL's form (scheme, host) and, given a policy, its scheme and port against it; no DNS. */
export function parseWebhookUrl(raw: string, policy: TransportPolicy = {}): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UrlRefusedError('not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UrlRefusedError('only http and https URLs');
  if (!url.hostname) throw new UrlRefusedError('the URL has no host');
  if (policy.httpsOnly && url.protocol !== 'https:') {
    throw new UrlRefusedError('only https URLs are allowed (WEBHOOK_HTTPS_ONLY)');
  }
  if (policy.allowedPorts && policy.allowedPorts.length > 0) {
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    if (!policy.allowedPorts.includes(port)) {
      throw new UrlRefusedError(
        `port ${port} is not allowed (WEBHOOK_ALLOWED_PORTS: ${policy.allowedPorts.join(', ')})`,
      );
    }
  }
  return url;
}

/**
 * Checks the URL against the policy, resolves its host and checks every address it resolves to; throws
 * UrlRefusedError when any is refused or the name does not resolve. Returns the address to connect to: the
 * caller connects there (sendWebhook pins it), so the host is resolved once per attempt, here.
 */
export async function resolveWebhookTarget(raw: string, policy: TransportPolicy = {}): Promise<ResolvedTarget> {
  const url = parseWebhookUrl(raw, policy);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: { address: string; family: number }[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    try {
      addresses = await (policy.resolve ?? systemResolver)(host);
    } catch (err) {
      throw new UrlRefusedError(`${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (addresses.length === 0) throw new UrlRefusedError(`${host} does not resolve`);
  for (const a of addresses) {
    const verdict = checkAddress(a.address, policy.allowed);
    if (!verdict.ok) {
      // A name's answer is not echoed: the refusal would otherwise tell a caller what internal names resolve to.
      throw new UrlRefusedError(
        isIP(host)
          ? `${host}: ${verdict.reason}`
          : `${host} resolves to a private, loopback or reserved address (outside WEBHOOK_ALLOWED_CIDRS)`,
      );
    }
  }
  const first = addresses[0]!;
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
}
