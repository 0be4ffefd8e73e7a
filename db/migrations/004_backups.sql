-- The backup catalog: one row per run, with what was stored where and how it was verified.
CREATE TABLE opsflow.backups (
  id              text PRIMARY KEY,                 -- the workflow id, backup:<database>:<startedAt>
  database        text NOT NULL,
  status          text NOT NULL CHECK (status IN ('running', 'verified', 'failed')),
  reason          text,                             -- why it failed
  started_at      timestamptz NOT NULL,
  finished_at     timestamptz,
  steps           jsonb NOT NULL DEFAULT '{}'::jsonb,  -- step → { startedAt, ms }
  size_bytes      bigint,
  sha256          text,
  locations       jsonb NOT NULL DEFAULT '[]'::jsonb,  -- [{ store: 'local'|'s3', key }]
  table_counts    jsonb,                            -- { "schema.table": rows } from the dump's snapshot
  verification    jsonb,                            -- { ok, reason, tables: [{ table, expected, restored }] }
  deleted_from    text[] NOT NULL DEFAULT '{}'      -- stores retention removed this backup from
);
CREATE INDEX backups_database_started ON opsflow.backups (database, started_at DESC);

-- Retention decisions, recorded before anything is deleted.
CREATE TABLE opsflow.backup_retention (
  backup_id    text NOT NULL REFERENCES opsflow.backups (id) ON DELETE CASCADE,
  store        text NOT NULL,
  decided_at   timestamptz NOT NULL DEFAULT now(),
  deleted_at   timestamptz,
  PRIMARY KEY (backup_id, store)
);
