-- The event catalogue: the event types an operator documents for its customers, each with a description and an
-- optional JSON Schema that publishes of the type are validated against; a deprecated type still publishes, with
-- a warning. Types not in the catalogue publish as before.
CREATE TABLE IF NOT EXISTS opsflow.event_types (
  name text PRIMARY KEY,
  description text NOT NULL,
  schema jsonb,
  deprecated boolean NOT NULL DEFAULT false,
  deprecation_note text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
