-- Audit rows are written ahead: when a mutating request has reached its route with a key, before anything is
-- changed, its row goes in as 'pending' with no status yet; when the request ends the row takes its outcome and
-- status. So no change is made without a row naming who asked (a request that cannot write its row is refused
-- with 503 and changes nothing), and a row still 'pending' later names a request whose process died before it
-- answered: the change may or may not have been made.
ALTER TABLE opsflow.audit_log DROP CONSTRAINT IF EXISTS audit_log_outcome_check;
ALTER TABLE opsflow.audit_log ADD CONSTRAINT audit_log_outcome_check
  CHECK (outcome IN ('pending', 'succeeded', 'refused', 'denied', 'failed'));
ALTER TABLE opsflow.audit_log ALTER COLUMN status DROP NOT NULL;
ALTER TABLE opsflow.audit_log ADD CONSTRAINT audit_log_status_when_ended
  CHECK ((outcome = 'pending') = (status IS NULL)) NOT VALID;
