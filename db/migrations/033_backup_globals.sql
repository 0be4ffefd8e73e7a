-- Each backup also stores the server's globals — its roles and tablespaces, `pg_dumpall --globals-only
-- --no-role-passwords` (encrypted like the dump when BACKUP_ENCRYPTION_KEY is set) — beside the dump in every
-- store: {key, sha256, sizeBytes} of the stored bytes. A restore onto a server that never had the source's roles
-- needs them first. Null for backups made before this.
ALTER TABLE opsflow.backups ADD COLUMN IF NOT EXISTS globals jsonb;
