/**
 * Tenant portal links (lib/portal/links.ts): an operator's key asks for a one-time link that opens the portal
 * for one tenant. The answer is the only place the link is shown.
 */
import { z } from '@hono/zod-openapi';
import type { KeyStore } from '../../../lib/keys/store.js';
import {
  createPortalLink,
  forgetExpiredLinks,
  PORTAL_LINK_DEFAULT_SEC,
  PORTAL_LINK_MAX_SEC,
  PORTAL_LINK_MIN_SEC,
  PORTAL_SCOPES,
} from '../../../lib/portal/links.js';
import { actorOf } from '../../auth.js';
import type { ApiDeps } from '../../deps.js';
import { json } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';

const PortalLink = z
  .object({
    url: z
      .string()
      .openapi({ description: 'Opens the portal once; give it to the tenant (shown in this answer only)' }),
    tenantId: z.string(),
    keyId: z
      .string()
      .openapi({ description: "The tenant key the portal acts as; revoking it ends the portal's session" }),
    scopes: z.array(z.enum(PORTAL_SCOPES)),
    expiresAt: z.string().openapi({ description: 'The link, its key and any session it opened end then' }),
  })
  .openapi('PortalLink');

export function portalLinkRoutes(deps: ApiDeps, keyStore: KeyStore) {
  const router = newRouter();
  // Where the link points: the console's public address when OPSFLOW_CONSOLE_URL says it, else this request's.
  const publicOrigin = deps.config.webhooks.consoleUrl ? new URL(deps.config.webhooks.consoleUrl).origin : undefined;

  router.openapi(
    route('endpoints:write', {
      method: 'post',
      path: '/tenants/{tenantId}/portal-links',
      operationId: 'createPortalLink',
      summary: "A one-time link to the tenant portal: the tenant's endpoints, catalogue, deliveries and recovers",
      description:
        'Only a global key holding read and endpoints:write; the portal gets those of its scopes among read, ' +
        'endpoints:write and deliveries:redrive, for that tenant only, until the link expires.',
      request: {
        params: z.object({ tenantId: z.string().min(1).max(255) }),
        body: {
          required: false,
          ...json(
            z
              .object({
                expiresInSec: z
                  .number()
                  .int()
                  .min(PORTAL_LINK_MIN_SEC)
                  .max(PORTAL_LINK_MAX_SEC)
                  .optional()
                  .openapi({
                    description: `How long the link and its portal last (default ${PORTAL_LINK_DEFAULT_SEC} s)`,
                  }),
              })
              .strict(),
          ),
        },
      },
      responses: { 201: { description: 'The link, shown once', ...json(PortalLink) } },
    }),
    async (c) => {
      const body = (c.req.valid('json') as { expiresInSec?: number } | undefined) ?? {};
      await forgetExpiredLinks(deps.pool);
      const link = await createPortalLink(
        { pool: deps.pool, keyStore },
        { tenantId: c.req.valid('param').tenantId, by: actorOf(c), expiresInSec: body.expiresInSec },
      );
      const origin = publicOrigin ?? new URL(c.req.url).origin;
      return c.json(
        {
          url: `${origin}/portal/open/${link.code}`,
          tenantId: link.tenantId,
          keyId: link.keyId,
          scopes: link.scopes,
          expiresAt: link.expiresAt.toISOString(),
        },
        201,
      );
    },
  );
  return router;
}
