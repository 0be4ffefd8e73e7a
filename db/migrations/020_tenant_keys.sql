-- A key may belong to a tenant: it then sees and changes only that tenant's endpoints, events, deliveries, dead
-- letters and subscriptions, and publishes only as that tenant. NULL: a global (operator's) key.
ALTER TABLE opsflow.api_keys ADD COLUMN IF NOT EXISTS tenant_id text;
-- Who did what, for a tenant: the acting key's tenant.
CREATE INDEX IF NOT EXISTS audit_log_tenant ON opsflow.audit_log (tenant_id, at DESC, id DESC) WHERE tenant_id IS NOT NULL;
