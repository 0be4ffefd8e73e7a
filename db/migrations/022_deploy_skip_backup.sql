-- Whether the requester asked to deploy without the pre-deploy backup: shown to whoever approves the deploy.
ALTER TABLE opsflow.deploys ADD COLUMN IF NOT EXISTS skip_backup boolean NOT NULL DEFAULT false;
