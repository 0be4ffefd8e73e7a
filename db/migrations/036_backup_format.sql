-- pg_dump's format of a backup's copies: 'custom' (one stream), or 'directory' (BACKUP_JOBS > 1: a parallel
-- directory dump stored as a tar of the directory). NULL: made before this column, always custom.
ALTER TABLE opsflow.backups ADD COLUMN IF NOT EXISTS format text CHECK (format IN ('custom', 'directory'));
