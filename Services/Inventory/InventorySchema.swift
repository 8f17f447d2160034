import PostboxBus

/// The `inventory` schema: products with their stock, and one reservation per order.
///
/// `available = on_hand - reserved`. A reservation moves `reserved` → `committed` (payment captured: the stock
/// leaves), `released` (payment failed) or `restocked` (a confirmed order was refunded); a rejected order gets a
/// `rejected` row and holds nothing.
enum InventorySchema {
    static let migrator = SchemaMigrator(
        schema: "inventory",
        migrations: [
            SchemaMigration(
                version: 1,
                name: "products and reservations",
                statements: [
                    """
                    CREATE TABLE inventory.products (
                        sku text PRIMARY KEY,
                        name text NOT NULL,
                        price_cents bigint NOT NULL CHECK (price_cents >= 0),
                        on_hand bigint NOT NULL CHECK (on_hand >= 0),
                        reserved bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
                        revision bigint NOT NULL DEFAULT 1,
                        updated_at timestamptz NOT NULL DEFAULT now())
                    """,
                    """
                    CREATE TABLE inventory.reservations (
                        order_id uuid PRIMARY KEY,
                        status text NOT NULL
                            CHECK (status IN ('reserved', 'rejected', 'committed', 'released', 'restocked')),
                        lines jsonb NOT NULL,
                        reason text,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now())
                    """,
                ]
            ),
            SchemaMigration(
                version: 2,
                name: "no statistics on reservations' lines",
                statements: [
                    // Reservations are read by order id only. An analyze that also sorted a sample of their lines
                    // (jsonb) took about 160 ms of CPU on 30,000 reservations, in one burst at every autovacuum
                    // visit that found the table changed by a tenth; without them it takes about 30 ms.
                    "ALTER TABLE inventory.reservations ALTER COLUMN lines SET STATISTICS 0"
                ]
            ),
        ]
    )
}
