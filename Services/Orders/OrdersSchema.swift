import PostboxBus

/// The `orders` schema: customers, carts, orders with their lines, and the catalogue read model.
enum OrdersSchema {
    static let migrator = SchemaMigrator(
        schema: "orders",
        migrations: [
            SchemaMigration(
                version: 1,
                name: "customers, catalogue, carts, orders",
                statements: [
                    """
                    CREATE TABLE orders.customers (
                        id uuid PRIMARY KEY,
                        name text,
                        token text NOT NULL UNIQUE,
                        created_at timestamptz NOT NULL DEFAULT now())
                    """,
                    """
                    CREATE TABLE orders.catalogue (
                        sku text PRIMARY KEY,
                        name text NOT NULL,
                        price_cents bigint NOT NULL,
                        revision bigint NOT NULL,
                        updated_at timestamptz NOT NULL DEFAULT now())
                    """,
                    """
                    CREATE TABLE orders.carts (
                        id uuid PRIMARY KEY,
                        customer_id uuid NOT NULL REFERENCES orders.customers (id),
                        status text NOT NULL CHECK (status IN ('open', 'checked_out')),
                        created_at timestamptz NOT NULL DEFAULT now())
                    """,
                    """
                    CREATE TABLE orders.cart_items (
                        cart_id uuid NOT NULL REFERENCES orders.carts (id),
                        sku text NOT NULL,
                        quantity int NOT NULL CHECK (quantity > 0),
                        PRIMARY KEY (cart_id, sku))
                    """,
                    """
                    CREATE TABLE orders.orders (
                        id uuid PRIMARY KEY,
                        customer_id uuid NOT NULL REFERENCES orders.customers (id),
                        cart_id uuid NOT NULL UNIQUE REFERENCES orders.carts (id),
                        idempotency_key text,
                        status text NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
                        reason text,
                        total_cents bigint NOT NULL,
                        trace_id text,
                        cancel_requested_at timestamptz,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now(),
                        UNIQUE (customer_id, idempotency_key))
                    """,
                    """
                    CREATE TABLE orders.order_lines (
                        order_id uuid NOT NULL REFERENCES orders.orders (id),
                        sku text NOT NULL,
                        quantity int NOT NULL,
                        price_cents bigint NOT NULL,
                        PRIMARY KEY (order_id, sku))
                    """,
                ]
            )
        ]
    )
}
