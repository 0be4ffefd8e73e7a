-- GET /v1/events filters by type and tenant, newest first; GET /v1/events/{id} lists the event's deliveries.
CREATE INDEX IF NOT EXISTS webhook_events_type ON opsflow.webhook_events (type, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS webhook_events_tenant ON opsflow.webhook_events (tenant_id, created_at DESC, id DESC)
  WHERE tenant_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_event ON opsflow.webhook_deliveries (event_id);
