-- Notifications through the webhook family: an endpoint receives the Standard Webhooks envelope (`standard`), a
-- Slack incoming-webhook message (`slack`) or a PagerDuty Events API v2 event (`pagerduty`, which needs the
-- integration's routing key, stored encrypted like signing secrets). Rendered at send time from the stored event.
ALTER TABLE opsflow.webhook_endpoints
  ADD COLUMN format text NOT NULL DEFAULT 'standard' CHECK (format IN ('standard', 'slack', 'pagerduty')),
  ADD COLUMN routing_key text,
  ADD CONSTRAINT webhook_endpoints_routing_key CHECK ((format = 'pagerduty') = (routing_key IS NOT NULL));

-- The condition an ops event opens or clears (`backup:app`, `deploy:web`), set at publish. A PagerDuty delivery
-- whose condition has a newer event already delivered to the same endpoint is not sent: a trigger retried after
-- the resolve that followed it would reopen a closed incident.
ALTER TABLE opsflow.webhook_events ADD COLUMN condition_key text;

-- Conditions opsflow watches between runs of a check (today: `dlq`, the open dead-letter count at the last DLQ
-- redrive run and whether `dlq.growing` was published): the next run publishes `dlq.cleared` when it stops.
CREATE TABLE opsflow.ops_conditions (
  key         text PRIMARY KEY,
  active      boolean NOT NULL DEFAULT false,
  detail      jsonb NOT NULL DEFAULT '{}',
  updated_at  timestamptz NOT NULL DEFAULT now()
);
