-- A subscription's row is committed before its workflow is started (PUT, and the batch import, which answers
-- before its starts are done). `workflow_started_at` records that the start went through; a row left without it
-- (Temporal unreachable, the API process killed between the commit and the start) is started by the
-- subscription workers' reconciler within a minute instead of waiting for the daily sweep.
ALTER TABLE opsflow.subscriptions ADD COLUMN workflow_started_at timestamptz;
-- Every row that existed before this column did had its workflow started by the API or by the sweep.
UPDATE opsflow.subscriptions SET workflow_started_at = created_at;
CREATE INDEX subscriptions_unstarted ON opsflow.subscriptions (created_at) WHERE workflow_started_at IS NULL;
