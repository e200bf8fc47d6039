-- The tenant registry: plans, tenants, and their API keys (hashed).

CREATE TABLE {{tables.plans}} (
    name text PRIMARY KEY,
    max_projects integer NOT NULL CHECK (max_projects >= 0)
);

INSERT INTO {{tables.plans}} (name, max_projects) VALUES
    ('free', 3),
    ('pro', 100),
    ('enterprise', 10000);

CREATE TABLE {{tables.tenants}} (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The schema is 'tenant_' || slug: 7 + 56 characters fit PostgreSQL's 63.
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9_]{0,55}$'),
    name text NOT NULL CHECK (name <> ''),
    plan text NOT NULL REFERENCES {{tables.plans}} (name),
    -- 'provisioning' from the registry row until the schema is migrated and the key stored.
    status text NOT NULL DEFAULT 'provisioning'
        CHECK (status IN ('provisioning', 'active', 'suspended')),
    created_at timestamptz NOT NULL DEFAULT now(),
    status_changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tenants_status_idx ON {{tables.tenants}} (status, status_changed_at);

CREATE TABLE {{tables.api_keys}} (
    -- The public part of a key, shown in it: how a request's key finds its row.
    key_id text PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES {{tables.tenants}} (id) ON DELETE CASCADE,
    -- Argon2id, PHC string format; the secret itself is never stored.
    key_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX api_keys_tenant_idx ON {{tables.api_keys}} (tenant_id);
