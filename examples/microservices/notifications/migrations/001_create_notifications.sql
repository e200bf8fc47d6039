-- What was sent to whom. `event_id` is the orders outbox event it was made from (another
-- module's, so no foreign key); unique, so a replayed event cannot notify twice.
CREATE TABLE {{tables.notifications}} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id bigint NOT NULL UNIQUE,
    user_id uuid NOT NULL,
    message text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON {{tables.notifications}} (user_id, id);
