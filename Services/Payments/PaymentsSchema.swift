import PostboxBus

/// The `payments` schema: each order's payment, and the intents (what to charge) that `order.placed` deliveries
/// recorded before `stock.reserved` carried the amount itself.
enum PaymentsSchema {
    static let migrator = SchemaMigrator(
        schema: "payments",
        migrations: [
            SchemaMigration(
                version: 1,
                name: "intents and payments",
                statements: [
                    """
                    CREATE TABLE payments.intents (
                        order_id uuid PRIMARY KEY,
                        amount_cents bigint NOT NULL,
                        payment_token text NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now())
                    """,
                    """
                    CREATE TABLE payments.payments (
                        id uuid PRIMARY KEY,
                        order_id uuid NOT NULL UNIQUE,
                        amount_cents bigint NOT NULL,
                        status text NOT NULL CHECK (status IN ('captured', 'declined', 'refunded', 'failed')),
                        charge_id text,
                        reason text,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now())
                    """,
                ]
            )
        ]
    )
}
