/**
 * `opsflow/client`: a typed client of the opsflow API, from its OpenAPI document (types generated into
 * schema.ts by openapi-typescript; requests made by openapi-fetch). Paths, parameters and bodies are checked
 * by the compiler; every error answer is the envelope `{ error: { code, message, requestId, details? } }`.
 *
 *   const opsflow = createOpsflowClient({ baseUrl: 'https://ops.example.com', apiKey: process.env.OPSFLOW_API_KEY! });
 *   const { data, error } = await opsflow.POST('/v1/events', { body: { type: 'invoice.paid', payload: { id: 'in_1' } } });
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './schema.js';

export type { components, operations, paths };
export type OpsflowClient = Client<paths>;
/** The error envelope every failing answer carries. */
export type OpsflowError = components['schemas']['Error'];
export type ErrorCode = OpsflowError['error']['code'];

export function createOpsflowClient(opts: {
  baseUrl: string;
  apiKey: string;
  /** Another fetch (tests pass the app's own `request`, so no port is opened). */
  fetch?: (request: Request) => Response | Promise<Response>;
}): OpsflowClient {
  return createClient<paths>({
    baseUrl: opts.baseUrl.replace(/\/$/, ''),
    headers: { authorization: `Bearer ${opts.apiKey}` },
    ...(opts.fetch ? { fetch: async (request: Request) => opts.fetch!(request) } : {}),
  });
}
