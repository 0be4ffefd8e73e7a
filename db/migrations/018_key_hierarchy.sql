-- Keys made by keys: the maker's id (a bootstrap key's env_… id, or another key's), so that revoking a key
-- revokes everything it minted, and what they minted. Keys made before this column have no maker on record
-- (NULL): they are revoked alone, as before.
ALTER TABLE opsflow.api_keys ADD COLUMN IF NOT EXISTS created_by_key text;
CREATE INDEX IF NOT EXISTS api_keys_maker ON opsflow.api_keys (created_by_key) WHERE created_by_key IS NOT NULL;
