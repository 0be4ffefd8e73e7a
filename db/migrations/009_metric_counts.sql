-- What GET /metrics counts over the history tables, kept up to date by triggers, so a scrape costs the same
-- with a thousand attempts or a hundred million. Each count is spread over 16 rows (shards) so that
-- concurrent writers rarely wait on one row; a scrape sums them.
CREATE TABLE opsflow.metric_counts (
  metric  text NOT NULL,
  label   text NOT NULL,
  shard   smallint NOT NULL,
  value   bigint NOT NULL,
  PRIMARY KEY (metric, label, shard)
);

-- Statement-level triggers with transition tables: one upsert per label per statement, however many rows.
-- Attempts ever made, by outcome: monotonic (a deleted attempt was still made).
CREATE FUNCTION opsflow.count_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO opsflow.metric_counts AS c (metric, label, shard, value)
    SELECT 'webhook_attempts', outcome, floor(random() * 16)::smallint, count(*) FROM new_rows GROUP BY outcome
  ON CONFLICT (metric, label, shard) DO UPDATE SET value = c.value + EXCLUDED.value;
  RETURN NULL;
END $$;
CREATE TRIGGER webhook_attempts_count AFTER INSERT ON opsflow.webhook_attempts
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION opsflow.count_attempts();

-- Deliveries by their current status: +1 for the status a row enters, -1 for the one it leaves.
CREATE FUNCTION opsflow.count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO opsflow.metric_counts AS c (metric, label, shard, value)
      SELECT 'webhook_deliveries', status, floor(random() * 16)::smallint, count(*) FROM new_rows GROUP BY status
    ON CONFLICT (metric, label, shard) DO UPDATE SET value = c.value + EXCLUDED.value;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO opsflow.metric_counts AS c (metric, label, shard, value)
      SELECT 'webhook_deliveries', status, floor(random() * 16)::smallint, -count(*) FROM old_rows GROUP BY status
    ON CONFLICT (metric, label, shard) DO UPDATE SET value = c.value + EXCLUDED.value;
  ELSE
    -- Most updates (attempt counts, next attempt) keep the status: they write nothing here.
    INSERT INTO opsflow.metric_counts AS c (metric, label, shard, value)
      SELECT 'webhook_deliveries', label, floor(random() * 16)::smallint, sum(n) FROM (
        SELECT n.status AS label, 1 AS n FROM old_rows o JOIN new_rows n USING (id) WHERE o.status <> n.status
        UNION ALL
        SELECT o.status, -1 FROM old_rows o JOIN new_rows n USING (id) WHERE o.status <> n.status
      ) d GROUP BY label
    ON CONFLICT (metric, label, shard) DO UPDATE SET value = c.value + EXCLUDED.value;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER webhook_deliveries_count_insert AFTER INSERT ON opsflow.webhook_deliveries
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION opsflow.count_deliveries();
CREATE TRIGGER webhook_deliveries_count_update AFTER UPDATE ON opsflow.webhook_deliveries
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION opsflow.count_deliveries();
CREATE TRIGGER webhook_deliveries_count_delete AFTER DELETE ON opsflow.webhook_deliveries
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION opsflow.count_deliveries();

-- The rows that exist now, counted once.
INSERT INTO opsflow.metric_counts (metric, label, shard, value)
  SELECT 'webhook_attempts', outcome, 0, count(*) FROM opsflow.webhook_attempts GROUP BY outcome;
INSERT INTO opsflow.metric_counts (metric, label, shard, value)
  SELECT 'webhook_deliveries', status, 0, count(*) FROM opsflow.webhook_deliveries GROUP BY status;

-- The last hour of attempts (latency quantiles) without reading the rest.
CREATE INDEX webhook_attempts_started ON opsflow.webhook_attempts (started_at);
-- The newest verified backup per database.
CREATE INDEX backups_verified ON opsflow.backups (database, started_at DESC) WHERE status = 'verified';
