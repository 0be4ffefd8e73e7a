-- Webhook delivery: endpoints, events, one delivery per (event, endpoint), every attempt, dead letters.

CREATE TABLE opsflow.webhook_endpoints (
  id                           text PRIMARY KEY,
  url                          text NOT NULL,
  description                  text,
  event_types                  text[],             -- NULL: every event type
  secret                       text NOT NULL,
  previous_secret              text,               -- keeps signing until previous_secret_expires_at
  previous_secret_expires_at   timestamptz,
  retry_schedule_ms            integer[] NOT NULL,
  timeout_ms                   integer NOT NULL,
  enabled                      boolean NOT NULL DEFAULT true,
  disabled_reason              text,
  disabled_at                  timestamptz,
  failing_since                timestamptz,        -- first failure since the last success
  last_success_at              timestamptz,
  created_at                   timestamptz NOT NULL DEFAULT now(),
  updated_at                   timestamptz NOT NULL DEFAULT now(),
  deleted_at                   timestamptz
);
CREATE INDEX webhook_endpoints_list ON opsflow.webhook_endpoints (created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE opsflow.webhook_events (
  id               text PRIMARY KEY,
  type             text NOT NULL,
  body             text NOT NULL,                 -- the exact bytes every attempt sends and signs
  idempotency_key  text UNIQUE,
  tenant_id        text,
  created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE opsflow.webhook_deliveries (
  id                text PRIMARY KEY,
  event_id          text NOT NULL REFERENCES opsflow.webhook_events (id),
  endpoint_id       text NOT NULL REFERENCES opsflow.webhook_endpoints (id),
  event_type        text NOT NULL,
  tenant_id         text,
  status            text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'retrying', 'delivered', 'dead_lettered', 'discarded')),
  attempts          integer NOT NULL DEFAULT 0,
  last_status_code  integer,
  last_error        text,
  next_attempt_at   timestamptz,
  delivered_at      timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_list ON opsflow.webhook_deliveries (created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_endpoint ON opsflow.webhook_deliveries (endpoint_id, created_at DESC);
CREATE INDEX webhook_deliveries_status ON opsflow.webhook_deliveries (status, created_at DESC);

CREATE TABLE opsflow.webhook_attempts (
  delivery_id     text NOT NULL REFERENCES opsflow.webhook_deliveries (id) ON DELETE CASCADE,
  attempt_no      integer NOT NULL,
  started_at      timestamptz NOT NULL,
  latency_ms      integer NOT NULL,
  status_code     integer,
  error           text,
  response_body   text,                           -- first 1 KiB
  outcome         text NOT NULL,
  decision        jsonb NOT NULL,                 -- so a retried activity returns it instead of sending again
  PRIMARY KEY (delivery_id, attempt_no)
);

CREATE TABLE opsflow.dead_letters (
  id            text PRIMARY KEY,
  delivery_id   text NOT NULL REFERENCES opsflow.webhook_deliveries (id) ON DELETE CASCADE,
  endpoint_id   text NOT NULL,
  event_type    text NOT NULL,
  reason        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  resolved_at   timestamptz,
  resolution    text CHECK (resolution IN ('redriven', 'discarded'))
);
-- At most one open dead letter per delivery, whatever retries or races happen.
CREATE UNIQUE INDEX dead_letters_open ON opsflow.dead_letters (delivery_id) WHERE resolved_at IS NULL;
CREATE INDEX dead_letters_list ON opsflow.dead_letters (created_at DESC, id DESC) WHERE resolved_at IS NULL;
CREATE INDEX dead_letters_resolved ON opsflow.dead_letters (resolved_at) WHERE resolved_at IS NOT NULL;

