/**
 * What opsflow shows and stores of an endpoint URL besides the URL itself (which is stored encrypted: a Slack
 * webhook's path or a tokened query is a credential): its origin, its host and its fingerprint.
 */
import { createHash } from 'node:crypto';
import type { SecretBox } from '../secret-box.js';

/** A URL's fingerprint: enough to tell endpoints apart, or to check one against a URL you hold, and no more. */
export const urlFingerprint = (url: string) => `sha256:${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;

/** A URL's origin (scheme and host): what is shown of it without endpoints:write, and stored in the clear. */
export function urlOrigin(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(invalid url)';
  }
}

/** How an endpoint URL is stored (migration 023): encrypted, with its origin and fingerprint beside it. */
export const storedUrl = (box: SecretBox, url: string) => ({
  url: box.encrypt(url),
  origin: urlOrigin(url),
  fingerprint: urlFingerprint(url),
});

/**
 * What a key without endpoints:write sees of an endpoint's URL: scheme and host. The rest — a Slack or Teams
 * webhook's path, a token in the query — is a credential to whoever holds it (it posts to the channel).
 */
export function redactUrl(url: string): string {
  const origin = urlOrigin(url);
  return origin === '(invalid url)' ? '…' : `${origin}/…`;
}

/** A URL's host, for records and messages that must not carry the whole URL. */
export const hostOf = (url: string) => {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid url)';
  }
};
