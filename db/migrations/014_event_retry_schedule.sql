-- POST /v1/events may carry its own retry schedule (`retrySchedule`), overriding the endpoint's for that event's
-- deliveries: a password-reset event wants ["0s","10s","1m"], a monthly invoice the endpoint's day-long one.
-- NULL: the endpoint's schedule, as before. Redrives and the reconciler read it from here too.
ALTER TABLE opsflow.webhook_events ADD COLUMN retry_schedule_ms integer[];
