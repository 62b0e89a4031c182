CREATE TABLE IF NOT EXISTS products (
    id          serial PRIMARY KEY,
    name        varchar(100)  NOT NULL,
    description text          NOT NULL DEFAULT '',
    category    varchar(50)   NOT NULL,
    price       numeric(10,2) NOT NULL CHECK (price >= 0),
    slogan      varchar(255)  NOT NULL DEFAULT '',
    stock       integer       NOT NULL DEFAULT 0 CHECK (stock >= 0),
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS orders (
    id              serial PRIMARY KEY,
    user_id         integer       NOT NULL REFERENCES users (id),
    product_id      integer       NOT NULL REFERENCES products (id),
    quantity        integer       NOT NULL CHECK (quantity BETWEEN 1 AND 3),
    unit_price      numeric(10,2) NOT NULL CHECK (unit_price >= 0),
    total_price     numeric(10,2) NOT NULL CHECK (total_price >= 0),
    status          varchar(16)   NOT NULL DEFAULT 'placed' CHECK (status IN ('placed', 'cancelled')),
    idempotency_key varchar(128),
    created_at      timestamptz   NOT NULL DEFAULT now(),
    cancelled_at    timestamptz
);
CREATE INDEX IF NOT EXISTS orders_user_id_idx ON orders (user_id, id);
-- One order per (user, key); keys are kept as long as the order row (>= 24 h by construction).
CREATE UNIQUE INDEX IF NOT EXISTS orders_user_idempotency_key
    ON orders (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The three SUSTech products, seeded once: only into an empty catalog.
INSERT INTO products (name, description, category, price, slogan, stock)
SELECT v.name, v.description, v.category, v.price, v.slogan, 500
FROM (VALUES
    ('SUSTech Hoodie', 'A warm fleece hoodie with the SUSTech crest embroidered on the chest.',
     'Apparel', 49.99, 'Stay warm, stay proud!'),
    ('SUSTech Water Bottle', 'A 750 ml insulated steel bottle that keeps drinks cold for a day.',
     'Drinkware', 19.99, 'Hydrate with pride!'),
    ('SUSTech Notebook', 'An A5 dotted notebook with 160 pages and the SUSTech logo on the cover.',
     'Stationery', 9.99, 'Write your future with SUSTech.')
) AS v (name, description, category, price, slogan)
WHERE NOT EXISTS (SELECT 1 FROM products);
