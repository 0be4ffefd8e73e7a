-- Channels: an endpoint with channels receives only events published on one of them; an endpoint without any
-- receives events whatever their channels (as before).
ALTER TABLE opsflow.webhook_endpoints ADD COLUMN IF NOT EXISTS channels text[];
ALTER TABLE opsflow.webhook_events ADD COLUMN IF NOT EXISTS channels text[];
