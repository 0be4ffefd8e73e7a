-- The id of the key a backup's copies (and its globals) are encrypted under (8 hex digits, as in each copy's
-- header), null when stored unencrypted: which backups still need an old BACKUP_ENCRYPTION_KEY_PREVIOUS.
ALTER TABLE opsflow.backups ADD COLUMN IF NOT EXISTS encryption_key_id text;
