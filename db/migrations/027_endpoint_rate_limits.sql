-- Per-endpoint rate limits: at most rate_limit_per_second requests a second reach the endpoint, from every worker
-- and both delivery paths together. NULL: unlimited (no pacing query at all).
ALTER TABLE opsflow.webhook_endpoints ADD COLUMN IF NOT EXISTS rate_limit_per_second integer
  CHECK (rate_limit_per_second BETWEEN 1 AND 1000);

-- The pacer's state: the next send slot of each rate-limited endpoint, and the times of its last sends (as many as
-- its limit) that admission counts. A narrow table of its own, so the slot's
-- frequent update neither rewrites nor locks the endpoint's row (fillfactor leaves room for HOT updates).
CREATE TABLE IF NOT EXISTS opsflow.endpoint_pacing (
  endpoint_id text PRIMARY KEY REFERENCES opsflow.webhook_endpoints (id) ON DELETE CASCADE,
  next_slot_at timestamptz NOT NULL,
  recent timestamptz[] NOT NULL DEFAULT '{}'
) WITH (fillfactor = 50);
