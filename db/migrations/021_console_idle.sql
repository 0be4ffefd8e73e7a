-- A console session also ends after CONSOLE_IDLE_TIMEOUT without a request: each request moves last_seen_at.
ALTER TABLE opsflow.console_sessions ADD COLUMN IF NOT EXISTS last_seen_at timestamptz NOT NULL DEFAULT now();
