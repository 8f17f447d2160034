import EmbeddedPostgres
import Foundation
import Logging
import PostboxBus
import PostboxService
import PostgresNIO

@testable import Inventory
@testable import Orders
@testable import PaymentGateway
@testable import Payments

/// A quiet logger for tests: errors only, unless `POSTBOX_TEST_LOG_LEVEL` says otherwise.
let testLogger: Logger = {
    var logger = Logger(label: "postbox.services.tests")
    logger.logLevel = ProcessInfo.processInfo.environment["POSTBOX_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
    return logger
}()

/// Fresh system databases: roles, schemas and grants from `SchemaSetup`, the bus, and every service's schema
/// migrated as its own role — cloned from one template per test process.
enum ServiceDatabases {
    static func make(prefix: String) async throws -> (EmbeddedPostgres, String) {
        let server = try await EmbeddedPostgres.shared()
        let factory = await FactoryHolder.shared.factory(server: server)
        return (server, try await factory.makeDatabase(prefix: prefix))
    }

    /// Each service's migrations, by role.
    static let migrators: [(role: String, migrator: SchemaMigrator)] = [
        ("orders", OrdersSchema.migrator), ("inventory", InventorySchema.migrator),
        ("payments", PaymentsSchema.migrator), ("payment_gateway", LedgerSchema.migrator),
    ]
}

private actor FactoryHolder {
    static let shared = FactoryHolder()
    private var factory: DatabaseFactory?

    func factory(server: EmbeddedPostgres) -> DatabaseFactory {
        if let factory { return factory }
        let created = DatabaseFactory(server: server, templateName: "services_template", logger: testLogger) { config, logger in
            try await SchemaSetup.prepare(configuration: config, logger: logger)
            for (role, migrator) in ServiceDatabases.migrators {
                var roleConfig = config
                roleConfig.username = role
                try await SchemaSetup.migrate(
                    configuration: roleConfig,
                    usesBus: role != "payment_gateway",
                    schema: migrator,
                    logger: logger
                )
            }
        }
        factory = created
        return created
    }
}
