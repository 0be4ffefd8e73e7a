-- Recovers: "send this endpoint everything since 14:00 again" as one tracked run. The row is its progress (the
-- run's workflow, webhook-recover:<id>, advances it a batch at a time) and stays as its record.
CREATE TABLE IF NOT EXISTS opsflow.webhook_recovers (
  id text PRIMARY KEY,
  endpoint_id text NOT NULL REFERENCES opsflow.webhook_endpoints (id),
  tenant_id text,
  since timestamptz NOT NULL,
  until timestamptz NOT NULL,
  -- failed: the window's dead-lettered and still-retrying deliveries; all: those and the delivered and discarded
  which text NOT NULL CHECK (which IN ('failed', 'all')),
  requested_by text NOT NULL,
  state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'finished', 'failed', 'canceled')),
  -- deliveries the window held when it was asked for, and how many have been sent again so far
  total integer NOT NULL,
  resent integer NOT NULL DEFAULT 0,
  cursor_at timestamptz,
  cursor_id text,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  CHECK (since < until)
);
-- One running recover per endpoint: a second is refused while the first goes on.
CREATE UNIQUE INDEX IF NOT EXISTS webhook_recovers_running ON opsflow.webhook_recovers (endpoint_id) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS webhook_recovers_list ON opsflow.webhook_recovers (created_at DESC, id DESC);
