-- The record of system checks: one row per run, whoever started it (schedule or API).
CREATE TABLE opsflow.system_check_runs (
  workflow_id  text PRIMARY KEY,
  status       text NOT NULL CHECK (status IN ('ok', 'degraded')),
  checks       jsonb NOT NULL,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX system_check_runs_finished_at ON opsflow.system_check_runs (finished_at DESC);
