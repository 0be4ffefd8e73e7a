import { OpenAPIHono } from '@hono/zod-openapi';
import type { Principal } from '../lib/keys/store.js';
import { errorResponse, validationMessage, zodDetails } from './errors.js';

export type AppEnv = {
  Variables: {
    requestId: string;
    keyId: string | undefined;
    principal: Principal | undefined;
    /** The operation a request reached (its operationId) and what it acts on, for the audit log. */
    audit: { action: string; resource: string | null } | undefined;
    /** Writes the request's audit row ahead (api/audit.ts): false when it could not, and the request is refused. */
    auditBegin: (() => Promise<boolean>) | undefined;
    /** The row written ahead, completed as the request ends. */
    auditRow: string | undefined;
  };
};

export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const { issues } = result.error;
        return errorResponse(c, 400, 'validation_failed', validationMessage(result.target, issues), zodDetails(issues));
      }
    },
  });
}
