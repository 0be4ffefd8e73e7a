-- Disaster recovery: restores onto another server (RESTORE_SERVERS) and the monthly DR drill.
-- server: the RESTORE_SERVERS entry restored onto (NULL: the source's own server, or the verify server for a drill);
-- globals: what the restore did with the backup's roles ({ rolesCreated, rolesPresent, failed, skipped, missing? });
-- rto_ms / rto_target_ms: a DR drill's time to a usable database, and RTO_TARGET when it ran.
ALTER TABLE opsflow.restores
  ADD COLUMN server text,
  ADD COLUMN globals jsonb,
  ADD COLUMN rto_ms bigint,
  ADD COLUMN rto_target_ms bigint;
ALTER TABLE opsflow.restores DROP CONSTRAINT restores_kind_check;
ALTER TABLE opsflow.restores ADD CONSTRAINT restores_kind_check CHECK (kind IN ('restore', 'drill', 'dr-drill'));
