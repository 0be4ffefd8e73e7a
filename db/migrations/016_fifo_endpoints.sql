-- Ordered (FIFO) endpoints: one delivery at a time, in the order deliveries were committed.
-- `fifo_seq` orders an endpoint's deliveries (a redrive moves one to the back); the column is added without a
-- default, then given one, so existing rows are not rewritten (they keep NULL and are older than any new one).
CREATE SEQUENCE IF NOT EXISTS opsflow.webhook_delivery_seq;
ALTER TABLE opsflow.webhook_endpoints
  ADD COLUMN IF NOT EXISTS ordering text NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'fifo'));
ALTER TABLE opsflow.webhook_deliveries ADD COLUMN IF NOT EXISTS fifo_seq bigint;
ALTER TABLE opsflow.webhook_deliveries ALTER COLUMN fifo_seq SET DEFAULT nextval('opsflow.webhook_delivery_seq');
-- The sequencer's question: this endpoint's oldest delivery not finished yet.
CREATE INDEX IF NOT EXISTS webhook_deliveries_fifo_idx ON opsflow.webhook_deliveries (endpoint_id, fifo_seq)
  WHERE status IN ('pending', 'retrying');
