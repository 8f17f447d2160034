import EmbeddedPostgres
import Foundation
import PostboxService
import PostgresNIO
import Testing

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

    @Test func settingUpTwiceChangesNothing() async throws {
        let (server, database) = try await ServiceDatabases.make(prefix: "setup_twice")
        try await SchemaSetup.prepare(configuration: server.configuration(database: database), logger: testLogger)
        try await SchemaSetup.prepare(configuration: server.configuration(database: database), logger: testLogger)
    }
}
