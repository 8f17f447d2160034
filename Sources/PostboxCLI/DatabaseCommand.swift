import ArgumentParser
import Logging
import PostboxService
import PostgresNIO

/// `postbox db setup`: roles, schemas and the bus schema in an existing PostgreSQL database.
struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Prepare a PostgreSQL database for the services.",
        subcommands: [Setup.self, Script.self]
    )

    struct Setup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply infra/postgres/setup.sql and the bus's migrations as an administrator; safe to repeat."
        )

        @Option(help: "An administrator URL: postgres://user[:password]@host[:port]/database")
        var databaseURL: String

        func run() async throws {
            let admin = try DatabaseURL(databaseURL)
            let logger = Logger(label: "postbox.db")
            try await admin.checkConnection(logger: logger.quieted())
            do {
                try await SchemaSetup.prepare(configuration: admin.configuration, logger: logger)
            } catch  where error is PSQLError || error is PostgresTransactionError {
                throw DatabaseFailure(error, database: admin)
            }
            print("set up \(admin): roles \(SchemaSetup.serviceRoles.joined(separator: ", ")), their schemas, and the bus")
            for role in SchemaSetup.serviceRoles {
                print("  DATABASE_URL for \(role): \(SchemaSetup.url(of: role, like: admin))")
            }
        }
    }

    struct Script: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sql",
            abstract: "Print the setup SQL (infra/postgres/setup.sql) for psql or a migration tool."
        )

        func run() async throws {
            print(SchemaSetup.script, terminator: "")
        }
    }
}
