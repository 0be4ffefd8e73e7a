-- Restores and restore drills: what was restored from which backup into which database, and how the
-- restored row counts compared with the backup's.
CREATE TABLE opsflow.restores (
  id               text PRIMARY KEY,                -- restore:<target>:<startedAt>, or <drill workflow id>:<database>
  kind             text NOT NULL CHECK (kind IN ('restore', 'drill')),
  backup_id        text REFERENCES opsflow.backups (id) ON DELETE SET NULL,
  database         text NOT NULL,                   -- the backed-up database
  target_database  text NOT NULL,
  status           text NOT NULL CHECK (status IN ('running', 'restored', 'failed')),
  reason           text,
  started_at       timestamptz NOT NULL,
  finished_at      timestamptz,
  source           jsonb,                           -- { store, key } restored from
  verification     jsonb                            -- { ok, reason, tables: [{ table, expected, restored }] }
);
CREATE INDEX restores_started ON opsflow.restores (started_at DESC);

-- The freshness check's memory: when ops were last told a database has no recent verified backup.
CREATE TABLE opsflow.backup_freshness_alerts (
  database    text PRIMARY KEY,
  alerted_at  timestamptz NOT NULL
);
