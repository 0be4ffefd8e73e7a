-- Subscription lifecycle. `subscriptions` is what the SaaS app reads (403 for expired tenants); the
-- workflow keeps it current. Notifications are unique per (subscription, period, milestone): the row is
-- written in the same transaction that sends, so a reminder goes out at most once.

CREATE TABLE opsflow.subscriptions (
  id                    text PRIMARY KEY,
  tenant_id             text NOT NULL,
  email                 text NOT NULL,
  name                  text,
  plan                  text,
  expires_at            timestamptz NOT NULL,
  timezone              text NOT NULL,
  reminder_offsets_ms   bigint[] NOT NULL,
  send_at               text,                       -- local "HH:MM", NULL: at the exact offset
  grace_days            double precision NOT NULL DEFAULT 0,  -- fractional days allowed
  status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'grace', 'expired', 'canceled')),
  cancel_reason         text,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_status_expiry ON opsflow.subscriptions (status, expires_at);
CREATE INDEX subscriptions_tenant ON opsflow.subscriptions (tenant_id);

CREATE TABLE opsflow.subscription_notifications (
  subscription_id   text NOT NULL REFERENCES opsflow.subscriptions (id) ON DELETE CASCADE,
  expires_at        timestamptz NOT NULL,
  milestone         text NOT NULL,                  -- '7d', '3d', '1d', 'expired', ...
  urgency           text NOT NULL,
  sent_at           timestamptz NOT NULL DEFAULT now(),
  message_id        text,
  PRIMARY KEY (subscription_id, expires_at, milestone)
);

CREATE TABLE opsflow.subscription_audit (
  id                bigserial PRIMARY KEY,
  subscription_id   text,                           -- NULL for the daily sweep
  action            text NOT NULL,
  details           jsonb NOT NULL DEFAULT '{}'::jsonb,
  at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_audit_subscription ON opsflow.subscription_audit (subscription_id, at);
