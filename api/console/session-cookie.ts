/** The session cookie's two ends, shared by the console's login and the portal's link: set it, and end it. */
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { csrfMatches, type SessionStore } from '../../lib/console/sessions.js';
import type { KeyStore, Principal } from '../../lib/keys/store.js';
import { secureRequest, sessionCookieName } from '../auth.js';
import { ApiError } from '../errors.js';

/** HttpOnly, SameSite=Strict, Path=/, and Secure (with the `__Host-` prefix) over https. */
export function setSessionCookie(c: Context, token: string, maxAgeSec: number): void {
  setCookie(c, sessionCookieName(c), token, {
    httpOnly: true,
    sameSite: 'Strict',
    secure: secureRequest(c),
    path: '/',
    maxAge: Math.max(1, Math.floor(maxAgeSec)),
  });
}

/**
 * A logout form's post: checks its CSRF token (when there is a session to end), ends the session and clears the
 * cookie; the session's principal, if its key still holds, for the audit log.
 */
export async function endSession(
  c: Context,
  deps: { sessions: SessionStore; keyStore: KeyStore },
): Promise<Principal | undefined> {
  const token = getCookie(c, sessionCookieName(c));
  const session = token ? await deps.sessions.find(token) : undefined;
  const form = await c.req.parseBody();
  if (session && !csrfMatches(session, typeof form._csrf === 'string' ? form._csrf : undefined)) {
    throw new ApiError(403, 'forbidden', 'Missing or wrong CSRF token');
  }
  if (token) await deps.sessions.destroy(token);
  deleteCookie(c, sessionCookieName(c), { path: '/', secure: secureRequest(c) });
  return session ? deps.keyStore.principalById(session.keyId) : undefined;
}
