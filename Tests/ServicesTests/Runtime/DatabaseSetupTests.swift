import EmbeddedPostgres
import Foundation
import PostboxService
import PostgresNIO
import Testing

@testable import Orders

@Suite("database roles and setup")
struct DatabaseSetupTests {
    @Test func infraSetupSQLIsTheSetupTheServicesUse() throws {
        let file = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("infra/postgres/setup.sql")
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(text == SchemaSetup.script, "regenerate with: swift run postbox db sql > infra/postgres/setup.sql")
    }

    @Test func aServiceRoleCannotReadAnotherServicesTables() async throws {
        let (server, database) = try await ServiceDatabases.make(prefix: "isolation")
        for (role, own) in [
            ("orders", "orders.orders"), ("inventory", "inventory.products"), ("payments", "payments.payments"),
            ("payment_gateway", "payment_gateway.charges"),
        ] {
            let connection = try await PostgresConnection.connect(
                configuration: .init(host: "127.0.0.1", port: server.port, username: role, password: nil, database: database, tls: .disable),
                id: 1,
                logger: testLogger
            )
            // Its own schema: yes.
            try await connection.query("SELECT count(*) FROM \(unescaped: own)", logger: testLogger)
            for (_, other) in [
                ("orders", "orders.orders"), ("inventory", "inventory.products"), ("payments", "payments.payments"),
                ("payment_gateway", "payment_gateway.charges"),
            ] where other != own {
                do {
                    try await connection.query("SELECT count(*) FROM \(unescaped: other)", logger: testLogger)
                    Issue.record("\(role) could read \(other)")
                } catch let error as PSQLError {
                    #expect(error.serverInfo?[.sqlState] == "42501", "\(role) reading \(other)")
                }
            }
            // The bus: the services yes, the card-processor stand-in no.
            do {
                try await connection.query("SELECT count(*) FROM bus.events", logger: testLogger)
                #expect(role != "payment_gateway")
            } catch let error as PSQLError {
                #expect(role == "payment_gateway")
                #expect(error.serverInfo?[.sqlState] == "42501")
            }
            // No new schemas.
            await #expect(throws: PSQLError.self) {
                try await connection.query("CREATE SCHEMA sneaky", logger: testLogger)
            }
            try await connection.close()
        }
    }

    /// A service started against a bus set up by an older release cannot upgrade it as its own role: it must say
    /// so, and what to run, rather than that nothing is set up.
    @Test func aServiceMeetingAnOlderBusItMayNotUpgradeSaysWhatToRun() async throws {
        let (server, database) = try await ServiceDatabases.make(prefix: "older_bus")
        let admin = try await PostgresConnection.connect(
            configuration: server.connectionConfiguration(database: database),
            id: 1,
            logger: testLogger
        )
        try await admin.query("DROP FUNCTION bus.publish_v1", logger: testLogger)
        try await admin.query("DELETE FROM bus.schema_migrations WHERE version = 5", logger: testLogger)
        try await admin.close()
        var orders = server.configuration(database: database)
        orders.username = "orders"
        do {
            try await SchemaSetup.migrate(configuration: orders, usesBus: true, schema: OrdersSchema.migrator, logger: testLogger)
            Issue.record("the orders role upgraded the bus schema")
        } catch let error as SchemaSetupError {
            #expect(error.description.contains("the bus schema is missing or older than this service needs"))
            #expect(error.description.contains("postbox db setup --database-url <admin url>"))
        }
    }

    @Test func settingUpTwiceChangesNothing() async throws {
        let (server, database) = try await ServiceDatabases.make(prefix: "setup_twice")
        try await SchemaSetup.prepare(configuration: server.configuration(database: database), logger: testLogger)
        try await SchemaSetup.prepare(configuration: server.configuration(database: database), logger: testLogger)
    }
}
