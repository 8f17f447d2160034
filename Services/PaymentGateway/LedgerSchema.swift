import PostboxBus

/// The `payment_gateway` schema: the processor's ledger of charges and refunds, which survives restarts.
enum LedgerSchema {
    static let migrator = SchemaMigrator(
        schema: "payment_gateway",
        migrations: [
            SchemaMigration(
                version: 1,
                name: "charges and refunds",
                statements: [
                    """
                    CREATE TABLE payment_gateway.charges (
                        id text PRIMARY KEY,
                        idempotency_key text NOT NULL UNIQUE,
                        reference text NOT NULL,
                        amount_cents bigint NOT NULL CHECK (amount_cents > 0),
                        token text NOT NULL,
                        status text NOT NULL CHECK (status IN ('captured', 'declined')),
                        trace_id text,
                        created_at timestamptz NOT NULL DEFAULT now())
                    """,
                    "CREATE INDEX charges_reference ON payment_gateway.charges (reference)",
                    """
                    CREATE TABLE payment_gateway.refunds (
                        id text PRIMARY KEY,
                        idempotency_key text NOT NULL UNIQUE,
                        charge_id text NOT NULL REFERENCES payment_gateway.charges (id),
                        amount_cents bigint NOT NULL CHECK (amount_cents > 0),
                        trace_id text,
                        created_at timestamptz NOT NULL DEFAULT now())
                    """,
                    "CREATE INDEX refunds_charge ON payment_gateway.refunds (charge_id)",
                ]
            )
        ]
    )
}
