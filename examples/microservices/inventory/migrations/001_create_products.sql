CREATE TABLE {{tables.products}} (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    stock integer NOT NULL CHECK (stock >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Stock taken by orders. `order_id` belongs to the orders module, in another schema whose name
-- the host chooses: no foreign key across modules.
CREATE TABLE {{tables.reservations}} (
    order_id uuid NOT NULL,
    product_id uuid NOT NULL REFERENCES {{tables.products}} (id),
    quantity integer NOT NULL CHECK (quantity > 0),
    reserved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX ON {{tables.reservations}} (product_id);
