/**
 * Tenant scoping of the webhook tables: a tenant key's request sees a delivery, an attempt or a dead letter only
 * when its endpoint is that tenant's — never one to the operator's tenant-less endpoints, whatever event it came from.
 */

/** SQL: the row's endpoint is tenant `$n`'s, or `$n` is null (no tenant asked for). */
export const ofTenant = (n: number, column = 'endpoint_id') =>
  `($${n}::text IS NULL OR ${column} IN (SELECT id FROM opsflow.webhook_endpoints WHERE tenant_id = $${n}))`;
