-- Endpoint URLs are stored encrypted (a Slack webhook's path is a credential): what may be shown without the key
-- lives beside them — the origin (scheme and host, what a key without endpoints:write sees) and a fingerprint of
-- the whole URL. opsflow writes both with every URL it encrypts. A URL written in plaintext (rows from before
-- this release, or written by a previous release's process during a rolling upgrade) gets both from this
-- trigger; every worker's start then encrypts it (ENCRYPTED_COLUMNS).
ALTER TABLE opsflow.webhook_endpoints
  ADD COLUMN IF NOT EXISTS url_origin text,
  ADD COLUMN IF NOT EXISTS url_fingerprint text;

CREATE OR REPLACE FUNCTION opsflow.endpoint_url_facts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  m text[];
  scheme text;
  hostport text;
BEGIN
  IF NEW.url LIKE 'v1.%' THEN
    RETURN NEW; -- encrypted: its writer set the origin and fingerprint
  END IF;
  -- scheme :// [userinfo@] host[:port], as the WHATWG URL parser gives origin for http(s): lower case, default
  -- port dropped.
  m := regexp_match(NEW.url, '^([A-Za-z][A-Za-z0-9+.-]*)://(?:[^/?#@]*@)?([^/?#]*)');
  IF m IS NULL THEN
    NEW.url_origin := '(invalid url)';
  ELSE
    scheme := lower(m[1]);
    hostport := lower(m[2]);
    IF (scheme = 'https' AND hostport LIKE '%:443') OR (scheme = 'http' AND hostport LIKE '%:80') THEN
      hostport := regexp_replace(hostport, ':[0-9]+$', '');
    END IF;
    NEW.url_origin := scheme || '://' || hostport;
  END IF;
  NEW.url_fingerprint := 'sha256:' || left(encode(sha256(convert_to(NEW.url, 'UTF8')), 'hex'), 16);
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS endpoint_url_facts ON opsflow.webhook_endpoints;
CREATE TRIGGER endpoint_url_facts BEFORE INSERT OR UPDATE OF url ON opsflow.webhook_endpoints
  FOR EACH ROW EXECUTE FUNCTION opsflow.endpoint_url_facts();

-- Rows already there: the trigger fills them.
UPDATE opsflow.webhook_endpoints SET url = url WHERE url_origin IS NULL OR url_fingerprint IS NULL;

ALTER TABLE opsflow.webhook_endpoints
  ALTER COLUMN url_origin SET NOT NULL,
  ALTER COLUMN url_fingerprint SET NOT NULL;
