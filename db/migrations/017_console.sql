-- The operator console (/console): login sessions, and the aggregates its pages plot, kept so that a page costs
-- the same with a thousand attempts or a hundred million.

-- A session is made by logging in with an API key; the cookie holds a random token, this table its SHA-256
-- digest (as for API keys), the key it acts as, and the CSRF token every write must carry.
CREATE TABLE IF NOT EXISTS opsflow.console_sessions (
  token_hash   bytea PRIMARY KEY,
  key_id       text NOT NULL,
  csrf_token   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_expiry ON opsflow.console_sessions (expires_at);

-- Attempts per hour, outcome and latency bucket, kept by a statement-level trigger (as metric_counts): the
-- console's "attempts by outcome" and "latency p50/p95/p99" plots read at most a few thousand rows for a week.
-- Buckets are width_bucket(latency_ms, {1,2,5,10,20,50,100,200,500,1000,2000,5000,10000,30000}): 0 is < 1 ms,
-- 14 is >= 30 s. Spread over 4 shards so concurrent writers rarely wait on one row.
CREATE TABLE IF NOT EXISTS opsflow.webhook_attempt_hours (
  hour     timestamptz NOT NULL,
  outcome  text NOT NULL,
  bucket   smallint NOT NULL,
  shard    smallint NOT NULL,
  n        bigint NOT NULL,
  PRIMARY KEY (hour, outcome, bucket, shard)
);

CREATE OR REPLACE FUNCTION opsflow.roll_up_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO opsflow.webhook_attempt_hours AS h (hour, outcome, bucket, shard, n)
    SELECT date_trunc('hour', started_at), outcome,
           width_bucket(latency_ms, ARRAY[1,2,5,10,20,50,100,200,500,1000,2000,5000,10000,30000]::int[]),
           floor(random() * 4)::smallint, count(*)
    FROM new_rows GROUP BY 1, 2, 3
  ON CONFLICT (hour, outcome, bucket, shard) DO UPDATE SET n = h.n + EXCLUDED.n;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS webhook_attempts_roll_up ON opsflow.webhook_attempts;
CREATE TRIGGER webhook_attempts_roll_up AFTER INSERT ON opsflow.webhook_attempts
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION opsflow.roll_up_attempts();

-- The attempts already made in the last 8 days, rolled up once.
INSERT INTO opsflow.webhook_attempt_hours (hour, outcome, bucket, shard, n)
  SELECT date_trunc('hour', started_at), outcome,
         width_bucket(latency_ms, ARRAY[1,2,5,10,20,50,100,200,500,1000,2000,5000,10000,30000]::int[]), 0, count(*)
  FROM opsflow.webhook_attempts WHERE started_at > now() - interval '8 days' GROUP BY 1, 2, 3
ON CONFLICT DO NOTHING;

-- The dead-letter queue's depth over time: letters made and resolved per hour (resolved_at has its index).
CREATE INDEX IF NOT EXISTS dead_letters_created ON opsflow.dead_letters (created_at);
-- Reminders sent today.
CREATE INDEX IF NOT EXISTS subscription_notifications_sent ON opsflow.subscription_notifications (sent_at);
-- The deploy timeline across targets, newest first.
CREATE INDEX IF NOT EXISTS deploys_started ON opsflow.deploys (started_at DESC);
