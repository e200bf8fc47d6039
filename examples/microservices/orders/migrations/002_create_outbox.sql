-- Events written in the same transaction as the change they describe, consumed later (by the
-- notifications service) with SELECT … FOR UPDATE SKIP LOCKED.
CREATE TABLE {{tables.outbox}} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
-- Consumers only ever look for what is pending, oldest first.
CREATE INDEX outbox_pending ON {{tables.outbox}} (id) WHERE processed_at IS NULL;
