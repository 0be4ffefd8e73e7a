-- A deploy started during one of its target's freeze windows, with an override: the window, when it ends and the
-- requester's reason, shown to the approver (whose decision it needs, four-eyes). Null for every other deploy.
ALTER TABLE opsflow.deploys ADD COLUMN IF NOT EXISTS freeze_override jsonb;
