-- Deploy history: one row per deploy or manual rollback, with its whole timeline and health evidence.
CREATE TABLE opsflow.deploys (
  id                text PRIMARY KEY,               -- deploy:<target>:<startedAt>
  workflow_id       text NOT NULL,                  -- deploy:<target> (the lock)
  run_id            text NOT NULL,
  target            text NOT NULL,
  environment       text NOT NULL,
  kind              text NOT NULL CHECK (kind IN ('deploy', 'rollback')),
  status            text NOT NULL,
  version           text,
  previous_version  text,
  requested_by      text,
  reason            text,
  decision          jsonb,                          -- { approved, by, at, comment | reason }
  backup_id         text,
  started_at        timestamptz NOT NULL,
  finished_at       timestamptz,
  timeline          jsonb NOT NULL DEFAULT '[]'::jsonb,
  samples           jsonb NOT NULL DEFAULT '[]'::jsonb,
  commands          jsonb NOT NULL DEFAULT '{}'::jsonb,  -- { deploy?, rollback? }: exit, duration, output tail
  detection_ms      integer,
  recovery_ms       integer
);
CREATE INDEX deploys_target_started ON opsflow.deploys (target, started_at DESC);
