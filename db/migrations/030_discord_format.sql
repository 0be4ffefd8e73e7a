-- Discord as an endpoint format beside Slack and PagerDuty (a webhook message with one embed per event).
ALTER TABLE opsflow.webhook_endpoints DROP CONSTRAINT IF EXISTS webhook_endpoints_format_check;
ALTER TABLE opsflow.webhook_endpoints ADD CONSTRAINT webhook_endpoints_format_check
  CHECK (format IN ('standard', 'slack', 'pagerduty', 'discord'));
