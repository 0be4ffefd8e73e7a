/**
 * API keys: make one (shown once), list them (never the key), revoke one. Only a key with `keys:admin`
 * may do any of it, and it cannot hand out scopes it does not hold itself.
 */
import { z } from '@hono/zod-openapi';
import { expandScopes, PRESETS, SCOPES } from '../../../lib/keys/scopes.js';
import type { KeyStore } from '../../../lib/keys/store.js';
import type { ApiDeps } from '../../deps.js';
import { actorOf } from '../../auth.js';
import { ApiError } from '../../errors.js';
import { cursorKey, Cursor, json, Limit } from '../../pagination.js';
import { newRouter } from '../../router.js';
import { route } from '../../scoped.js';

const ScopeName = z.enum([...SCOPES, ...(Object.keys(PRESETS) as (keyof typeof PRESETS)[])]);

const ApiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    scopes: z.array(z.enum(SCOPES)),
    tenantId: z
      .string()
      .nullable()
      .openapi({ description: "The tenant it is limited to: only that tenant's webhooks and subscriptions" }),
    prefix: z.string().openapi({ description: 'The first characters of the key, to recognise it' }),
    createdAt: z.string(),
    createdBy: z.string(),
    createdByKey: z.string().nullable().openapi({ description: 'The id of the key that made it' }),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    revokedBy: z.string().nullable(),
  })
  .openapi('ApiKey');

const IdParam = z.object({ id: z.string().min(1).max(100) });
const TenantId = z.string().min(1).max(255);

export function apiKeyRoutes(_deps: ApiDeps, store: KeyStore) {
  const router = newRouter();

  router.openapi(
    route('keys:admin', {
      method: 'post',
      path: '/api-keys',
      operationId: 'createApiKey',
      summary: 'Make an API key with scopes (or presets); the key is in this answer only',
      request: {
        body: {
          required: true,
          ...json(
            z
              .object({
                name: z.string().trim().min(1).max(100),
                scopes: z.array(ScopeName).min(1).max(50),
                tenantId: TenantId.optional().openapi({
                  description:
                    "Limit the key to one tenant (set by a global key only; a tenant key's keys are always its tenant's)",
                }),
                expiresAt: z.iso
                  .datetime({ offset: true })
                  .openapi({ description: "At most the maker's own expiry; unset: the maker's expiry, if it has one" })
                  .transform((s) => new Date(s))
                  .optional(),
              })
              .strict(),
          ),
        },
      },
      responses: { 201: { description: 'The key, shown once', ...json(ApiKey.extend({ key: z.string() })) } },
    }),
    async (c) => {
      const body = c.req.valid('json');
      if (body.expiresAt && body.expiresAt.getTime() <= Date.now()) {
        throw new ApiError(422, 'unprocessable', 'expiresAt is in the past', [
          { path: 'expiresAt', message: 'in the past' },
        ]);
      }
      const { scopes } = expandScopes(body.scopes);
      const { record, key } = await store.create({
        name: body.name,
        scopes,
        expiresAt: body.expiresAt,
        tenantId: body.tenantId,
        by: actorOf(c),
      });
      return c.json({ ...record, key }, 201);
    },
  );

  router.openapi(
    route('keys:admin', {
      method: 'get',
      path: '/api-keys',
      operationId: 'listApiKeys',
      summary: 'API keys, newest first (never the keys themselves); bootstrap keys from the environment first',
      request: {
        query: z.object({
          includeRevoked: z
            .enum(['true', 'false'])
            .transform((v) => v === 'true')
            .optional(),
          cursor: Cursor,
          limit: Limit,
        }),
      },
      responses: {
        200: {
          description: 'A page of keys',
          ...json(
            z.object({
              bootstrap: z.array(
                z.object({ id: z.string(), name: z.string(), scopes: z.array(z.string()), source: z.string() }),
              ),
              items: z.array(ApiKey),
              nextCursor: z.string().nullable(),
            }),
          ),
        },
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const result = await store.list({
        cursor: cursorKey(q.cursor),
        limit: q.limit,
        includeRevoked: q.includeRevoked ?? false,
      });
      return c.json(result, 200);
    },
  );

  router.openapi(
    route('keys:admin', {
      method: 'delete',
      path: '/api-keys/{id}',
      operationId: 'revokeApiKey',
      summary: 'Revoke a key and every key it minted: every API process refuses them within 5 seconds',
      description: 'Only a key holding every scope of the key it revokes may revoke it.',
      request: { params: IdParam },
      responses: {
        200: {
          description: 'The revoked key, and the keys revoked with it (what it minted, and what those minted)',
          ...json(ApiKey.extend({ alsoRevoked: z.array(ApiKey) })),
        },
      },
    }),
    async (c) => c.json(await store.revoke(c.req.valid('param').id, actorOf(c)), 200),
  );

  return router;
}
