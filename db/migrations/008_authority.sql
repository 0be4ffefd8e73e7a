-- API keys with scopes, stored as SHA-256 digests (the key itself is shown once, when it is made), and the
-- identity of the key that acted on every record where a person's decision matters.
CREATE TABLE opsflow.api_keys (
  id           text PRIMARY KEY,                  -- key_<time><random>
  name         text NOT NULL,
  scopes       text[] NOT NULL,                   -- expanded scope names (presets are expanded at creation)
  hash         bytea NOT NULL UNIQUE,             -- sha256(key)
  prefix       text NOT NULL,                     -- the key's first characters, to recognise it in a list
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text NOT NULL,                     -- "name (id)" of the key that made it
  expires_at   timestamptz,
  revoked_at   timestamptz,
  revoked_by   text
);
CREATE INDEX api_keys_list ON opsflow.api_keys (created_at DESC, id DESC);

-- Who asked for a deploy, by key id (requested_by holds the key's name); the approver is in decision.
ALTER TABLE opsflow.deploys ADD COLUMN requested_by_key text;
-- Who restored what.
ALTER TABLE opsflow.restores ADD COLUMN requested_by text;
ALTER TABLE opsflow.restores ADD COLUMN requested_by_key text;
-- Who redrove or discarded a dead letter ("schedule" for the scheduled redrive).
ALTER TABLE opsflow.dead_letters ADD COLUMN resolved_by text;
