-- History retention (WEBHOOK_HISTORY_RETENTION, SYSTEM_CHECK_RETENTION, AUDIT_RETENTION): the daily prune
-- finds what is old enough by index, in batches, however large the tables have grown.
CREATE INDEX webhook_deliveries_finished ON opsflow.webhook_deliveries (updated_at)
  WHERE status IN ('delivered', 'discarded');
CREATE INDEX webhook_events_created ON opsflow.webhook_events (created_at);
CREATE INDEX subscription_audit_at ON opsflow.subscription_audit (at);
