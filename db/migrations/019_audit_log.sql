-- Who did what: one row per mutating API request (and per console login and logout), written by the API as the
-- request ends — who (the key's id and name, its tenant once keys have one; null for a login that matched no
-- key), what (the operation, e.g. createEndpoint), on what (the resource, e.g. endpoints/ep_…), how it ended
-- (succeeded, refused, denied, failed, with the HTTP status), where from (api or console), and the request id
-- that finds its log lines. Read by GET /v1/audit (scope audit:read), pruned after AUDIT_RETENTION.
CREATE TABLE IF NOT EXISTS opsflow.audit_log (
  id           text PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()), -- ms: the cursor's precision
  actor_key_id text,
  actor_name   text,
  tenant_id    text,
  action       text NOT NULL,
  resource     text,
  outcome      text NOT NULL CHECK (outcome IN ('succeeded', 'refused', 'denied', 'failed')),
  status       integer NOT NULL,
  via          text NOT NULL CHECK (via IN ('api', 'console')),
  request_id   text NOT NULL,
  address      text,
  detail       jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_at ON opsflow.audit_log (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_actor ON opsflow.audit_log (actor_key_id, at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_action ON opsflow.audit_log (action, at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_resource ON opsflow.audit_log (resource text_pattern_ops, at DESC, id DESC);
