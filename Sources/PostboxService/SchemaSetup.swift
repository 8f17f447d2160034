import Foundation
public import Logging
public import PostboxBus
public import PostgresNIO

/// The database-wide setup a Postbox system needs before its services start, and each service's own migration.
///
/// ``statements`` are the text of `infra/postgres/setup.sql` (a test keeps the two equal): one login role per
/// service, one schema per service owned by its role, the `bus` schema, and a `postbox_bus` group role through
/// which the services (not the card-processor stand-in) read and write the bus's tables. A role cannot read
/// another service's schema. Every statement is idempotent, so it may be applied to a database again.
public enum SchemaSetup {
    /// The login roles, one per service, each owning the schema of the same name.
    public static let serviceRoles = ["orders", "inventory", "payments", "payment_gateway"]
    /// The roles that use the bus.
    public static let busRoles = ["orders", "inventory", "payments"]

    /// The setup statements, in order.
    public static let statements: [String] = [
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'postbox_bus') THEN
                CREATE ROLE postbox_bus NOLOGIN;
            END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orders') THEN CREATE ROLE orders LOGIN; END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inventory') THEN CREATE ROLE inventory LOGIN; END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payments') THEN CREATE ROLE payments LOGIN; END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payment_gateway') THEN
                CREATE ROLE payment_gateway LOGIN;
            END IF;
        END
        $$
        """,
        "GRANT postbox_bus TO orders, inventory, payments",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        "CREATE SCHEMA IF NOT EXISTS orders AUTHORIZATION orders",
        "CREATE SCHEMA IF NOT EXISTS inventory AUTHORIZATION inventory",
        "CREATE SCHEMA IF NOT EXISTS payments AUTHORIZATION payments",
        "CREATE SCHEMA IF NOT EXISTS payment_gateway AUTHORIZATION payment_gateway",
        "CREATE SCHEMA IF NOT EXISTS bus",
        "GRANT USAGE ON SCHEMA bus TO postbox_bus",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bus TO postbox_bus",
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA bus TO postbox_bus",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA bus GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO postbox_bus",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA bus GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO postbox_bus",
    ]

    /// `infra/postgres/setup.sql`, as psql runs it.
    public static var script: String {
        "-- Postbox database setup: roles, schemas and bus grants. Idempotent; apply as the database owner:\n"
            + "--   psql \"$ADMIN_DATABASE_URL\" -v ON_ERROR_STOP=1 -f infra/postgres/setup.sql\n"
            + "-- Generated from Sources/PostboxService/SchemaSetup.swift; a test keeps the two equal.\n\n"
            + statements.map { $0 + ";\n" }.joined(separator: "\n")
    }

    /// Applies the setup statements and the bus's migrations as an administrator (the database owner or a
    /// superuser). Safe to run again and from several processes at once.
    public static func prepare(configuration: PostgresClient.Configuration, logger: Logger) async throws {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger.quieted())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            // Roles are shared by every database of the cluster, but advisory locks are not: a setup of another
            // database at the same moment can create a role between our check and our CREATE. Every statement
            // checks first, so trying again after such a collision finds the work done.
            var attempt = 0
            while true {
                attempt += 1
                do {
                    try await client.withTransaction(logger: logger) { connection in
                        _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtext('postbox.setup'))", logger: logger)
                        for statement in statements {
                            _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                    }
                    break
                } catch let error as PostgresTransactionError where attempt < 10 && isConcurrentCatalogChange(error) {
                    try await Task.sleep(for: .milliseconds(20 * attempt))
                }
            }
            try await MessageBus.schemaMigrator.migrate(client: client, logger: logger)
        }
    }

    /// A collision with another database's setup on the cluster-wide role catalog.
    private static func isConcurrentCatalogChange(_ error: PostgresTransactionError) -> Bool {
        guard let psql = error.closureError as? PSQLError, let state = psql.serverInfo?[.sqlState] else { return false }
        // unique_violation, duplicate_object, and "tuple concurrently updated" (internal_error).
        return ["23505", "42710", "XX000"].contains(state)
    }

    /// The URL of `role` on the same server and database as `admin` (the embedded server trusts loopback).
    public static func url(of role: String, like admin: DatabaseURL) -> String {
        "postgres://\(role)@\(admin.host):\(admin.port)/\(admin.database)"
    }

    /// Checks that the bus is migrated, applies the service's own migrations and registers its subscriptions, as
    /// the service's role. Registering before the service runs means no event published from then on is missed,
    /// even one published before its consumers first start.
    public static func migrate(
        configuration: PostgresClient.Configuration,
        usesBus: Bool,
        schema: SchemaMigrator?,
        subscriptions: [Subscription] = [],
        logger: Logger
    ) async throws {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger.quieted())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            if usesBus {
                do {
                    try await MessageBus.schemaMigrator.migrate(client: client, logger: logger)
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42501" {
                    throw SchemaSetupError.busNotUpToDate
                } catch let error as PostgresTransactionError {
                    if let psql = error.closureError as? PSQLError, psql.serverInfo?[.sqlState] == "42501" {
                        throw SchemaSetupError.busNotUpToDate
                    }
                    throw error
                }
            }
            if let schema {
                try await schema.migrate(client: client, logger: logger)
            }
            let bus = MessageBus(client: client, logger: logger)
            for subscription in subscriptions { try await bus.register(subscription) }
        }
    }
}

/// The database is not set up for the services: what is missing and how to set it up.
public struct SchemaSetupError: Error, CustomStringConvertible, Sendable {
    /// One line.
    public let description: String

    /// The bus's migrations need an administrator: none were applied here, or a newer release added some.
    static let busNotUpToDate = SchemaSetupError(
        description: "the bus schema is missing or older than this service needs, and this role may not create or "
            + "upgrade it; run `postbox db setup --database-url <admin url>` or apply infra/postgres/setup.sql"
    )
}

extension Logger {
    /// This logger at `error` level at least: for the background logger of a short-lived client, whose harmless
    /// "run() hasn't been called yet" warning races with its first query.
    public func quieted() -> Logger {
        var logger = self
        logger.logLevel = max(logLevel, .error)
        return logger
    }
}
