-- A delivery's row is committed before its workflow is started. `workflow_started_at` records that the start
-- went through; a row left without it (Temporal unreachable at that moment, the API process killed between the
-- commit and the start) is started by the workers' reconciler, so an accepted event is never stranded.
ALTER TABLE opsflow.webhook_deliveries ADD COLUMN workflow_started_at timestamptz;
-- Every delivery that existed before this column did was started by the API (or failed the request).
UPDATE opsflow.webhook_deliveries SET workflow_started_at = created_at;
CREATE INDEX webhook_deliveries_unstarted ON opsflow.webhook_deliveries (created_at) WHERE workflow_started_at IS NULL;
