-- `user_id` belongs to the users module, in another schema whose name the host chooses: no
-- foreign key across modules (the order checks the user in its transaction instead).
CREATE TABLE {{tables.orders}} (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'placed',
    total_cents bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON {{tables.orders}} (user_id, created_at);

CREATE TABLE {{tables.order_items}} (
    order_id uuid NOT NULL REFERENCES {{tables.orders}} (id) ON DELETE CASCADE,
    product_id uuid NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
