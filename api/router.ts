import { OpenAPIHono } from '@hono/zod-openapi';
import type { Principal } from '../lib/keys/store.js';
import { errorResponse, zodDetails } from './errors.js';

export type AppEnv = {
  Variables: { requestId: string; keyId: string | undefined; principal: Principal | undefined };
};

export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        return errorResponse(c, 400, 'validation_failed', `Invalid ${result.target}`, zodDetails(result.error.issues));
      }
    },
  });
}
