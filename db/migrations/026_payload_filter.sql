-- An endpoint's payload filter: a JSON array of objects; an event reaches the endpoint when its payload contains
-- (jsonb @>) one of them. NULL: every payload.
ALTER TABLE opsflow.webhook_endpoints ADD COLUMN IF NOT EXISTS payload_filter jsonb;
