-- Subscription ids are per tenant: two tenants may each have a subscription "sub_1", and neither can learn that
-- the other's exists (a tenant key PUTting another tenant's id used to be refused, which told it the id was
-- taken). A subscription is (tenant_id, id).
--
-- Its workflow id names both: subscription:<tenant, URI-encoded>/<id>. Subscriptions made before this migration
-- keep the id their running workflow has, subscription:<id> (legacy_workflow_id).
ALTER TABLE opsflow.subscriptions ADD COLUMN legacy_workflow_id boolean NOT NULL DEFAULT false;
UPDATE opsflow.subscriptions SET legacy_workflow_id = true;

ALTER TABLE opsflow.subscription_notifications ADD COLUMN tenant_id text;
UPDATE opsflow.subscription_notifications n SET tenant_id = s.tenant_id
  FROM opsflow.subscriptions s WHERE s.id = n.subscription_id;
ALTER TABLE opsflow.subscription_notifications ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE opsflow.subscription_notifications DROP CONSTRAINT subscription_notifications_subscription_id_fkey;
ALTER TABLE opsflow.subscription_notifications DROP CONSTRAINT subscription_notifications_pkey;

ALTER TABLE opsflow.subscriptions DROP CONSTRAINT subscriptions_pkey;
ALTER TABLE opsflow.subscriptions ADD PRIMARY KEY (tenant_id, id);
-- Found by id alone too (an operator's key naming no tenant), and paged by id.
CREATE INDEX subscriptions_id ON opsflow.subscriptions (id);
DROP INDEX opsflow.subscriptions_tenant; -- the primary key leads with tenant_id

ALTER TABLE opsflow.subscription_notifications ADD PRIMARY KEY (tenant_id, subscription_id, expires_at, milestone);
ALTER TABLE opsflow.subscription_notifications ADD FOREIGN KEY (tenant_id, subscription_id)
  REFERENCES opsflow.subscriptions (tenant_id, id) ON DELETE CASCADE;

ALTER TABLE opsflow.subscription_audit ADD COLUMN tenant_id text;
UPDATE opsflow.subscription_audit a SET tenant_id = s.tenant_id
  FROM opsflow.subscriptions s WHERE s.id = a.subscription_id;
DROP INDEX opsflow.subscription_audit_subscription;
CREATE INDEX subscription_audit_subscription ON opsflow.subscription_audit (tenant_id, subscription_id, at);
