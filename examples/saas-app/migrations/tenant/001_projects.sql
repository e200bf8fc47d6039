-- One tenant's tables, applied into that tenant's own schema. Every name is qualified through
-- the templates: nothing here (or in the app) depends on search_path.

CREATE FUNCTION {{schema}}.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE {{tables.projects}} (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL CHECK (name <> ''),
    description text,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX projects_created_at_idx ON {{tables.projects}} (created_at);

CREATE TRIGGER projects_touch_updated_at BEFORE UPDATE ON {{tables.projects}}
    FOR EACH ROW EXECUTE FUNCTION {{schema}}.touch_updated_at();
