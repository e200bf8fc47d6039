CREATE TABLE IF NOT EXISTS {{tables.audit_log}} (
    id bigserial PRIMARY KEY,
    event text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
