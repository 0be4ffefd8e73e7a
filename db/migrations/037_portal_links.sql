-- Tenant portal links: an operator hands a customer a one-time link; opening it makes a console-style session
-- for the link's tenant key (a key of that tenant made with the link, expiring with it). Only the code's
-- SHA-256 is kept; used_at makes it one-time.
CREATE TABLE IF NOT EXISTS opsflow.portal_links (
  code_hash   bytea PRIMARY KEY,
  key_id      text NOT NULL,
  tenant_id   text NOT NULL,
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz
);
CREATE INDEX IF NOT EXISTS portal_links_expiry ON opsflow.portal_links (expires_at);

-- The audit log names the portal as where a request came from (a tenant's session), beside the API and the console.
ALTER TABLE opsflow.audit_log DROP CONSTRAINT IF EXISTS audit_log_via_check;
ALTER TABLE opsflow.audit_log ADD CONSTRAINT audit_log_via_check CHECK (via IN ('api', 'console', 'portal'));
