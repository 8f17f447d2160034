public import Logging
public import PostgresNIO

/// Brings one schema up to date: creates it if needed and applies the migrations it has not seen, in order.
///
/// It takes a transaction-scoped advisory lock named after the schema, so several processes starting at once
/// apply each migration exactly once (the others wait, then find nothing to do). Applied versions are recorded in
/// `<schema>.schema_migrations`.
///
/// An up-to-date schema is detected without any DDL, so a role that may only use the schema (not create in it)
/// can call `migrate` at every start. The schema itself is created only if it does not exist yet, so a schema
/// created beforehand by an administrator for a less privileged owner works too.
public struct SchemaMigrator: Sendable {
    /// The schema this migrator owns.
    public let schema: String
    /// The full history, in any order.
    public let migrations: [SchemaMigration]

    /// Creates a migrator for `schema` (a plain identifier) with its full history.
    public init(schema: String, migrations: [SchemaMigration]) {
        precondition(schema.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "schema names are plain identifiers")
        self.schema = schema
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Applies what is missing and returns the versions it applied (empty when already up to date).
    @discardableResult
    public func migrate(client: PostgresClient, logger: Logger) async throws -> [Int] {
        if try await pendingVersions(client: client, logger: logger).isEmpty { return [] }
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query(
                "SELECT pg_advisory_xact_lock(hashtext(\("postbox.migrations." + schema)))",
                logger: logger
            )
            let missing = try await connection.query(
                "SELECT to_regnamespace(\(schema)) IS NULL",
                logger: logger
            ).decode(Bool.self).reduce(into: false) { $0 = $1 }
            if missing {
                try await connection.query("CREATE SCHEMA \(unescaped: schema)", logger: logger)
            }
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS \(unescaped: schema).schema_migrations (
                    version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """,
                logger: logger
            )
            let applied = try await appliedVersions(connection: connection, logger: logger)
            var appliedNow: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO \(unescaped: schema).schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger
                )
                logger.info(
                    "applied migration",
                    metadata: ["db.schema": "\(schema)", "migration.version": "\(migration.version)", "migration.name": "\(migration.name)"]
                )
                appliedNow.append(migration.version)
            }
            return appliedNow
        }
    }

    /// The versions not yet applied; empty means the schema is up to date (what a readiness check asks).
    public func pendingVersions(client: PostgresClient, logger: Logger) async throws -> [Int] {
        let exists = try await client.query(
            "SELECT to_regclass(\(schema + ".schema_migrations")) IS NOT NULL",
            logger: logger
        ).decode(Bool.self).reduce(into: false) { $0 = $1 }
        guard exists else { return migrations.map(\.version) }
        let applied = try await client.withConnection { try await appliedVersions(connection: $0, logger: logger) }
        return migrations.map(\.version).filter { !applied.contains($0) }
    }

    private func appliedVersions(connection: PostgresConnection, logger: Logger) async throws -> Set<Int> {
        var versions = Set<Int>()
        let rows = try await connection.query(
            "SELECT version FROM \(unescaped: schema).schema_migrations",
            logger: logger
        )
        for try await version in rows.decode(Int.self) { versions.insert(version) }
        return versions
    }
}
