/// The bus's tables, in the `bus` schema. Only this module reads or writes them, directly or through the SQL functions
/// it installs (``PublishFunction`` lets other statements publish).
///
/// - `events`: every published envelope, kept for the retention period (history and deduplication by id).
/// - `subscriptions`: which subscription receives which topic.
/// - `deliveries`: one row per (subscription, event) still to be handled; `visible_at` is both the delay/backoff
///   time and the lease expiry, `lease_token` changes at every claim so a late acknowledgement cannot match.
/// - `handled`: one row per (subscription, event) handled, written in the handler's transaction: the inbox that
///   makes a duplicate a no-op, and the history timelines read.
/// - `dead_letters`: deliveries that gave up, with the error of every attempt.
enum BusSchema {
    static let name = "bus"

    static let migrator = SchemaMigrator(schema: name, migrations: migrations)

    static let migrations: [SchemaMigration] = [
        SchemaMigration(
            version: 1,
            name: "events, subscriptions, deliveries, handled, dead letters",
            statements: [
                """
                CREATE TABLE bus.events (
                    id uuid PRIMARY KEY,
                    type text NOT NULL,
                    version int NOT NULL,
                    occurred_at timestamptz NOT NULL,
                    published_at timestamptz NOT NULL DEFAULT now(),
                    correlation_id text,
                    causation_id uuid,
                    traceparent text,
                    ordering_key text,
                    payload jsonb NOT NULL)
                """,
                "CREATE INDEX events_published_at ON bus.events (published_at)",
                "CREATE INDEX events_correlation ON bus.events (correlation_id) WHERE correlation_id IS NOT NULL",
                """
                CREATE TABLE bus.subscriptions (
                    topic text NOT NULL,
                    subscription text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (topic, subscription))
                """,
                """
                CREATE TABLE bus.deliveries (
                    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    subscription text NOT NULL,
                    event_id uuid NOT NULL,
                    ordering_key text,
                    visible_at timestamptz NOT NULL,
                    attempts int NOT NULL DEFAULT 0,
                    lease_token uuid,
                    lease_owner text,
                    errors text[] NOT NULL DEFAULT '{}')
                """,
                "CREATE INDEX deliveries_claim ON bus.deliveries (subscription, visible_at, id)",
                """
                CREATE INDEX deliveries_ordering ON bus.deliveries (subscription, ordering_key, id)
                    WHERE ordering_key IS NOT NULL
                """,
                """
                CREATE TABLE bus.handled (
                    subscription text NOT NULL,
                    event_id uuid NOT NULL,
                    attempts int NOT NULL,
                    handled_by text,
                    handled_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (subscription, event_id))
                """,
                "CREATE INDEX handled_at ON bus.handled (handled_at)",
                """
                CREATE TABLE bus.dead_letters (
                    subscription text NOT NULL,
                    event_id uuid NOT NULL,
                    attempts int NOT NULL,
                    reason text NOT NULL,
                    errors text[] NOT NULL,
                    dead_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (subscription, event_id))
                """,
            ]
        ),
        SchemaMigration(
            version: 2,
            name: "vacuum deliveries by count, not by share of the table",
            statements: [
                // Every handled event leaves dead entries at the head of the claim index (the claim's old version
                // and the acknowledged row) that each later claim walks past until a vacuum removes them. The
                // default trigger (a fifth of the table) almost never fires on a queue that stays small.
                """
                ALTER TABLE bus.deliveries SET (
                    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
                    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000,
                    autovacuum_vacuum_cost_delay = 0)
                """
            ]
        ),
        SchemaMigration(
            version: 3,
            name: "per-delivery statements as functions planned with index scans only",
            // See DeliveryRoutine: a plan made while the queue looked empty must not scan it whole once it is not.
            statements: DeliveryRoutines.all.map(\.definition)
        ),
        SchemaMigration(
            version: 4,
            name: "one plan per connection for the per-delivery functions with constant limits",
            statements: DeliveryRoutines.plannedOnce.map { $0.setting("plan_cache_mode", to: "force_generic_plan") }
        ),
        SchemaMigration(
            version: 5,
            name: "bus.publish_v1: publish from inside any statement",
            statements: [PublishFunction.definition]
        ),
        SchemaMigration(
            version: 6,
            name: "bus.acknowledge_in_statement_v1: a handler's statement acknowledges its event",
            statements: [
                DeliveryRoutines.acknowledgeInStatementV1.definition,
                DeliveryRoutines.acknowledgeInStatementV1.setting("plan_cache_mode", to: "force_generic_plan"),
            ]
        ),
        SchemaMigration(
            version: 7,
            name: "bus.acknowledge_in_statement_v2: a handler's statement also chooses how its transaction commits",
            statements: [
                DeliveryRoutines.acknowledgeInStatement.definition,
                DeliveryRoutines.acknowledgeInStatement.setting("plan_cache_mode", to: "force_generic_plan"),
            ]
        ),
        SchemaMigration(
            version: 8,
            name: "no statistics on the events' columns that no statement filters, joins or sorts on",
            statements: [
                // Events are read by id, swept by publication time and traced by correlation id. An analyze that
                // also sorted a sample of payloads (jsonb) and of the opaque trace, causation and ordering
                // columns took about 450 ms of CPU on 30,000 events, in one burst, at every autovacuum visit
                // that found the table changed by a tenth; without them it takes about 90 ms.
                """
                ALTER TABLE bus.events
                    ALTER COLUMN payload SET STATISTICS 0,
                    ALTER COLUMN traceparent SET STATISTICS 0,
                    ALTER COLUMN causation_id SET STATISTICS 0,
                    ALTER COLUMN ordering_key SET STATISTICS 0
                """
            ]
        ),
        SchemaMigration(
            version: 9,
            name: "no automatic analyze of the event log, the queue and the handled history",
            statements: [
                // No plan the bus runs on these tables depends on their statistics: the per-delivery functions plan
                // with index scans only (DeliveryRoutine), publishing inserts, and retention finds its slices
                // through the tables' indexes (the handled one in index order). Yet every autovacuum visit that found them changed analysed them in one burst with the
                // services' other tables: 0.26-0.29 s of a 0.68-0.72 s burst, which at 160 orders/s on two cores
                // left the flow about twice as many slow orders (docs/benchmarks.md, "What changed"). A manual
                // ANALYZE still collects statistics.
                "ALTER TABLE bus.events SET (autovacuum_analyze_threshold = 2147483647)",
                "ALTER TABLE bus.deliveries SET (autovacuum_analyze_threshold = 2147483647)",
                "ALTER TABLE bus.handled SET (autovacuum_analyze_threshold = 2147483647)",
            ]
        ),
    ]
}
