-- The todos table of the todo module, in whatever schema the host gives it.
CREATE TABLE {{tables.todos}} (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    title       text        NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    description text,
    completed   boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- GET /todos?completed=… lists newest first within one state.
CREATE INDEX todos_completed_created_at_idx
    ON {{tables.todos}} (completed, created_at DESC, id);

-- updated_at is kept by the database, so no code path can forget it.
CREATE FUNCTION {{schema}}.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER todos_touch_updated_at
    BEFORE UPDATE ON {{tables.todos}}
    FOR EACH ROW EXECUTE FUNCTION {{schema}}.touch_updated_at();
