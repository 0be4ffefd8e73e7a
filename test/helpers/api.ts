/**
 * Calling the API from tests without a port: through `app.request`, with the test key. `typedClient` is the
 * typed client (`opsflow/client`) over the app, for calls whose request the compiler should check; `apiCaller`
 * sends any method, path and body — including the malformed ones failure tests need — and answers the status
 * and the parsed body (a call without a body sends no content type, as a client would).
 */
import { createOpsflowClient, type OpsflowClient } from '../../api/client/index.js';
import { TEST_API_KEY } from './harness.js';

interface RequestsApp {
  request(input: string | Request, init?: RequestInit): Response | Promise<Response>;
}

/** The bearer header of a key (default: the harness's admin key). */
export const bearer = (key = TEST_API_KEY) => ({ authorization: `Bearer ${key}` });

/** The bearer header with the JSON content type. */
export const authHeaders = (key = TEST_API_KEY) => ({ ...bearer(key), 'content-type': 'application/json' });

export function typedClient(app: RequestsApp, key = TEST_API_KEY): OpsflowClient {
  return createOpsflowClient({ baseUrl: 'http://opsflow.test', apiKey: key, fetch: (r) => app.request(r) });
}

export interface ApiAnswer<T> {
  status: number;
  /** The parsed JSON body; null when there is none (204) or it is not JSON. */
  body: T;
}

/** `(method, path, body?) → { status, body }` against `app` (a getter, for apps made in beforeAll). */
export function apiCaller(app: RequestsApp | (() => RequestsApp), key = TEST_API_KEY) {
  return async <T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> => {
    const target = typeof app === 'function' ? app() : app;
    const res = await target.request(path, {
      method,
      ...(body === undefined ? { headers: bearer(key) } : { headers: authHeaders(key), body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as T };
  };
}

/** A console page's HTML as a session of `key` sees it (logged in through the login form). */
export async function consoleHtml(app: RequestsApp, page: string, key = TEST_API_KEY): Promise<string> {
  const login = await app.request('/console/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
    body: new URLSearchParams({ key }).toString(),
  });
  const cookie = /opsflow_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1];
  if (!cookie) throw new Error(`console login failed: ${login.status}`);
  return (await app.request(page, { headers: { cookie: `opsflow_session=${cookie}` } })).text();
}
