import { createHmac } from 'node:crypto';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { generateSecret, isValidSecret, signatureHeader, signOne } from '../../lib/webhooks/signing.js';
import {
  allowList,
  checkAddress,
  embeddedIPv4,
  parseWebhookUrl,
  resolveWebhookTarget,
  transportPolicy,
  UrlRefusedError,
  type HostResolver,
} from '../../lib/webhooks/ssrf.js';
import { sendWebhook } from '../../lib/webhooks/send.js';
import { respond, startReceiver } from '../helpers/http.js';
import { classify, nextStep, parseRetryAfter } from '../../workflows/webhooks/policy.js';

describe('Standard Webhooks signing', () => {
  it('reproduces the specification test vector', () => {
    expect(
      signOne(
        'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
        'msg_p5jXN8AQM9LWM0D4loKWxJek',
        1614265330,
        '{"test": 2432232314}',
      ),
    ).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('signs with every secret during a rotation, space-separated', () => {
    const a = generateSecret();
    const b = generateSecret();
    const header = signatureHeader([a, b], 'msg_1', 1700000000, '{"x":1}');
    const parts = header.split(' ');
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe(signOne(a, 'msg_1', 1700000000, '{"x":1}'));
    expect(parts[1]).toBe(signOne(b, 'msg_1', 1700000000, '{"x":1}'));
  });

  it('agrees with an independent HMAC of "{id}.{timestamp}.{body}"', () => {
    const secret = generateSecret();
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key).update('msg_2.1700000001.{"é":"ü"}').digest('base64');
    expect(signOne(secret, 'msg_2', 1700000001, '{"é":"ü"}')).toBe(`v1,${expected}`);
  });

  it('validates secrets', () => {
    expect(isValidSecret(generateSecret())).toBe(true);
    expect(isValidSecret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe(true);
    expect(isValidSecret('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe(false);
    expect(isValidSecret('whsec_c2hvcnQ=')).toBe(false);
    expect(isValidSecret('whsec_not base64!')).toBe(false);
  });
});

describe('delivery policy', () => {
  const schedule = [0, 60_000, 300_000, 900_000, 3_600_000];
  const now = Date.parse('2026-11-23T12:00:00Z');

  it('classifies answers', () => {
    expect(classify({ status: 200 }, now).kind).toBe('success');
    expect(classify({ status: 204 }, now).kind).toBe('success');
    expect(classify({ status: 410 }, now).kind).toBe('gone');
    expect(classify({ status: 301 }, now).kind).toBe('retryable');
    expect(classify({ status: 400 }, now).kind).toBe('retryable');
    expect(classify({ status: 500 }, now).kind).toBe('retryable');
    expect(classify({ error: 'ECONNRESET' }, now).kind).toBe('retryable');
    expect(classify({ status: 503, retryAfter: '7' }, now)).toEqual({ kind: 'retryable', retryAfterMs: 7000 });
    expect(classify({ status: 429, retryAfter: 'Mon, 23 Nov 2026 12:00:30 GMT' }, now)).toEqual({
      kind: 'retryable',
      retryAfterMs: 30_000,
    });
  });

  it('parses Retry-After', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('walks the schedule, then dead-letters', () => {
    expect(nextStep({ kind: 'retryable' }, 0, schedule)).toEqual({ kind: 'retry', delayMs: 60_000 });
    expect(nextStep({ kind: 'retryable' }, 3, schedule)).toEqual({ kind: 'retry', delayMs: 3_600_000 });
    expect(nextStep({ kind: 'retryable' }, 4, schedule)).toMatchObject({ kind: 'dead_letter' });
    expect(nextStep({ kind: 'success' }, 4, schedule)).toEqual({ kind: 'delivered' });
    expect(nextStep({ kind: 'gone' }, 0, schedule)).toMatchObject({ kind: 'dead_letter' });
    expect(nextStep({ kind: 'permanent', reason: 'URL refused' }, 0, schedule)).toEqual({
      kind: 'dead_letter',
      reason: 'URL refused',
    });
  });

  it('honours Retry-After, capped by the largest step', () => {
    expect(nextStep({ kind: 'retryable', retryAfterMs: 5000 }, 0, schedule)).toEqual({ kind: 'retry', delayMs: 5000 });
    expect(nextStep({ kind: 'retryable', retryAfterMs: 86_400_000 }, 0, schedule)).toEqual({
      kind: 'retry',
      delayMs: 3_600_000,
    });
    expect(nextStep({ kind: 'retryable', retryAfterMs: 5000 }, 4, schedule)).toMatchObject({ kind: 'dead_letter' });
  });
});

describe('SSRF guard', () => {
  const refused = async (url: string, allowed?: string[]) => {
    const err = await resolveWebhookTarget(url, allowed ? { allowed: allowList(allowed) } : undefined).catch(
      (e: unknown) => e,
    );
    return err instanceof UrlRefusedError;
  };

  it.each([
    'http://127.0.0.1/',
    'http://2130706433/', // decimal
    'http://0177.0.0.1/', // octal
    'http://0x7f.0.0.1/', // hex
    'http://0x7f000001/',
    'http://127.1/',
    'http://0.0.0.0/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[::ffff:169.254.169.254]/',
    'http://[64:ff9b::a9fe:a9fe]/', // NAT64 of 169.254.169.254
    'http://[::ffff:0:7f00:1]/', // IPv4-translated 127.0.0.1
    'http://[::ffff:0:808:808]/', // IPv4-translated, even of a public address: the whole ::ffff:0:0:0/96
    'http://[64:ff9b:1::a00:1]/', // local-use NAT64 (64:ff9b:1::/48)
    'http://[64:ff9b:1:ffff::1]/',
    'http://[2002:7f00:1::]/', // 6to4 of 127.0.0.1
    'http://[fd00::1]/',
    'http://[fe80::1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.1.2.3/',
    'http://172.16.0.1/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://224.0.0.1/',
    'http://240.0.0.1/',
    'http://255.255.255.255/',
    'http://198.18.0.1/',
    'http://localhost/', // a name resolving to 127.0.0.1
    'http://localhost./',
  ])('refuses %s', async (url) => {
    expect(await refused(url)).toBe(true);
  });

  it('refuses other schemes and junk', () => {
    for (const url of ['ftp://example.com/', 'file:///etc/passwd', 'gopher://x/', 'not a url', 'javascript:alert(1)']) {
      expect(() => parseWebhookUrl(url), url).toThrow(UrlRefusedError);
    }
  });

  it('refuses a name that does not resolve', async () => {
    expect(await refused('http://no-such-host.invalid/')).toBe(true);
  });

  it('accepts public addresses, and private ones inside WEBHOOK_ALLOWED_CIDRS', async () => {
    expect(checkAddress('93.184.216.34')).toEqual({ ok: true });
    expect(checkAddress('2606:2800:220:1:248:1893:25c8:1946')).toEqual({ ok: true });
    expect(await refused('http://127.0.0.1:8080/hook', ['127.0.0.1/32'])).toBe(false);
    expect(await refused('http://[::ffff:127.0.0.1]/', ['127.0.0.1/32'])).toBe(false);
    expect(await refused('http://127.0.0.2/', ['127.0.0.1/32'])).toBe(true);
    const target = await resolveWebhookTarget('http://localhost:9/x', {
      allowed: allowList(['127.0.0.0/8', '::1/128']),
    });
    expect(['127.0.0.1', '::1']).toContain(target.address);
  });

  it('extracts embedded IPv4 addresses', () => {
    expect(embeddedIPv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(embeddedIPv4('::ffff:0:a9fe:a9fe')).toBe('169.254.169.254');
    expect(embeddedIPv4('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(embeddedIPv4('64:ff9b::a9fe:a9fe')).toBe('169.254.169.254');
    expect(embeddedIPv4('2002:c0a8:101::1')).toBe('192.168.1.1');
    expect(embeddedIPv4('2606:2800:220:1::1')).toBeUndefined();
  });
});

describe('transport policy', () => {
  const policy = (env: { httpsOnly?: boolean; allowedPorts?: number[] }) =>
    transportPolicy({ allowedCidrs: [], httpsOnly: env.httpsOnly ?? false, allowedPorts: env.allowedPorts ?? [] });
  const refusal = (url: string, p: ReturnType<typeof policy>) => {
    try {
      parseWebhookUrl(url, p);
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(UrlRefusedError);
      return (err as Error).message;
    }
  };

  it('WEBHOOK_HTTPS_ONLY refuses http: and keeps https:', () => {
    const p = policy({ httpsOnly: true });
    expect(refusal('http://example.com/hook', p)).toMatch(/only https URLs .*WEBHOOK_HTTPS_ONLY/);
    expect(refusal('HTTP://example.com/hook', p)).toMatch(/only https/);
    expect(refusal('https://example.com/hook', p)).toBeUndefined();
    expect(refusal('http://example.com/hook', policy({}))).toBeUndefined();
  });

  it('WEBHOOK_ALLOWED_PORTS allows only its ports, the scheme default counting as its port', () => {
    const p = policy({ allowedPorts: [443, 8443] });
    expect(refusal('https://example.com/', p)).toBeUndefined();
    expect(refusal('https://example.com:443/', p)).toBeUndefined();
    expect(refusal('https://example.com:8443/x', p)).toBeUndefined();
    expect(refusal('http://example.com/', p)).toMatch(/port 80 is not allowed \(WEBHOOK_ALLOWED_PORTS: 443, 8443\)/);
    expect(refusal('https://example.com:22/', p)).toMatch(/port 22 is not allowed/);
    expect(refusal('https://example.com:6379/', policy({}))).toBeUndefined();
  });

  it('DNS rebinding: the request goes to the address that was vetted, not to a second answer', async () => {
    // The "public" address is 127.0.0.2 (allowed for the test); the rebinding answer, 127.0.0.1, is refused.
    // One receiver on each, same port: whichever address is connected to shows which answer won.
    const vetted = await startReceiver(respond(200, 'vetted'), { host: '127.0.0.2' });
    const port = Number(new URL(vetted.url).port);
    const attacker = await startReceiver(respond(200, 'rebound'), { host: '127.0.0.1', port });
    try {
      const answers: string[] = [];
      const rebinding: HostResolver = () => {
        const address = answers.length === 0 ? '127.0.0.2' : '127.0.0.1';
        answers.push(address);
        return Promise.resolve([{ address, family: 4 }]);
      };
      const p = {
        ...transportPolicy({ allowedCidrs: ['127.0.0.2/32'], httpsOnly: false, allowedPorts: [] }, rebinding),
      };
      const url = `http://hooks.rebind.test:${port}/in`;
      const target = await resolveWebhookTarget(url, p);
      expect(target.address).toBe('127.0.0.2');
      const answer = await sendWebhook({ target, headers: {}, body: '{}', timeoutMs: 2000 });
      expect(answer).toMatchObject({ status: 200, body: 'vetted' });
      expect(vetted.requests).toHaveLength(1);
      expect(vetted.requests[0]!.headers.host).toBe(`hooks.rebind.test:${port}`);
      expect(attacker.requests).toHaveLength(0);
      expect(answers).toEqual(['127.0.0.2']); // asked once, at the check

      // What the pinning prevents: a client that resolves again at connect time gets the second answer.
      await new Promise<void>((resolve, reject) => {
        const req = http.request(
          url,
          {
            method: 'POST',
            // A plain resolving lookup, as a client without pinning would use (answers all when asked to).
            lookup: (host, opts, cb) => {
              void rebinding(host).then((a) => {
                if ((opts as { all?: boolean }).all) (cb as unknown as (e: null, all: typeof a) => void)(null, a);
                else cb(null, a[0]!.address, a[0]!.family);
              });
            },
          },
          (res) => {
            res.resume();
            res.on('end', resolve);
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
      expect(attacker.requests).toHaveLength(1);
      // And the guard refuses the rebound answer when it is the one it is shown.
      const refusal = resolveWebhookTarget(url, p);
      await expect(refusal).rejects.toThrow(/resolves to a private, loopback or reserved address/);
      await expect(refusal).rejects.not.toThrow(/127\.0\.0\.1/); // the rule, not the address
    } finally {
      await vetted.close();
      await attacker.close();
    }
  });
});
