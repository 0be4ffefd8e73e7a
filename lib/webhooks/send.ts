/**
 * One HTTP request (a webhook's POST, or a system check's GET) to an address already checked by the SSRF guard. Redirects are not followed;
 * only the first 1 KiB of the response body is read (a 10 MB answer costs 1 KiB); the whole exchange is
 * bounded by the endpoint's timeout.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { ResolvedTarget } from './ssrf.js';

export const RESPONSE_BODY_LIMIT = 1024;

export interface SendResult {
  status?: number;
  retryAfter?: string;
  /** First 1 KiB of the response body. */
  body?: string;
  latencyMs: number;
  /** A transport failure: timeout, reset, refused, TLS, ... */
  error?: string;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 64 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

export function sendWebhook(opts: {
  target: ResolvedTarget;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  method?: 'GET' | 'POST';
}): Promise<SendResult> {
  const { target } = opts;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  // Connect to the address the guard checked, never to a fresh DNS answer.
  const pinned: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
        { address: target.address, family: target.family },
      ]);
    } else callback(null, target.address, target.family);
  };
  const isHttps = target.url.protocol === 'https:';
  const payload = Buffer.from(opts.body, 'utf8');

  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: SendResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = (isHttps ? https : http).request(
      target.url,
      {
        method: opts.method ?? 'POST',
        agent: isHttps ? agents.https : agents.http,
        lookup: pinned,
        headers: { ...opts.headers, 'content-length': String(payload.length), 'user-agent': 'opsflow-webhooks/1' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const done = () =>
          finish({
            status: res.statusCode,
            retryAfter: res.headers['retry-after'],
            body: Buffer.concat(chunks).subarray(0, RESPONSE_BODY_LIMIT).toString('utf8'),
            latencyMs: elapsed(),
          });
        res.on('data', (chunk: Buffer) => {
          if (size < RESPONSE_BODY_LIMIT) chunks.push(chunk);
          size += chunk.length;
          if (size > 64 * 1024) {
            // Do not read (or keep a socket busy with) a large answer: we keep 1 KiB of it anyway.
            done();
            res.destroy();
          }
        });
        res.on('end', done);
        res.on('error', (err) => finish({ status: res.statusCode, error: describe(err), latencyMs: elapsed() }));
        res.on('close', done);
      },
    );
    const timer = setTimeout(() => {
      finish({ error: `timed out after ${opts.timeoutMs} ms`, latencyMs: elapsed() });
      req.destroy();
    }, opts.timeoutMs);
    req.on('error', (err) => finish({ error: describe(err), latencyMs: elapsed() }));
    req.end(payload);
  });
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `${code}: ${err.message}` : err.message;
}
