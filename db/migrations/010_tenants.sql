-- Tenants: an endpoint may belong to one. An event with a tenant reaches that tenant's endpoints and those
-- with no tenant (the operator's own); an event without one reaches only endpoints with no tenant.
ALTER TABLE opsflow.webhook_endpoints ADD COLUMN tenant_id text;
CREATE INDEX webhook_endpoints_tenant ON opsflow.webhook_endpoints (tenant_id) WHERE deleted_at IS NULL;

-- Idempotency keys are per tenant: two tenants may use the same key for different events.
ALTER TABLE opsflow.webhook_events DROP CONSTRAINT webhook_events_idempotency_key_key;
CREATE UNIQUE INDEX webhook_events_idempotency ON opsflow.webhook_events ((coalesce(tenant_id, '')), idempotency_key)
  WHERE idempotency_key IS NOT NULL;
