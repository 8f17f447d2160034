import Foundation
public import Logging
public import PostgresNIO

/// Hands out fresh databases, each a copy of one template database that is prepared (migrated, seeded) once.
///
/// `CREATE DATABASE … TEMPLATE` copies files instead of replaying migrations, so a test gets an isolated, migrated
/// database in about a tenth of a second and tests can run in parallel.
public actor DatabaseFactory {
    /// Prepares the template database; it receives the template's connection settings and must close its
    /// connections before returning (PostgreSQL cannot copy a database that has sessions).
    public typealias Prepare = @Sendable (PostgresClient.Configuration, Logger) async throws -> Void

    private let server: EmbeddedPostgres
    private let templateName: String
    private let prepare: Prepare
    private let logger: Logger
    private var prepared: Task<Void, any Error>?
    private var counter = 0

    /// - Parameters:
    ///   - server: Where the databases live.
    ///   - templateName: The template database's name (a–z, 0–9, _).
    ///   - prepare: Called once, lazily, to fill the template.
    public init(server: EmbeddedPostgres, templateName: String, logger: Logger, prepare: @escaping Prepare) {
        self.server = server
        self.templateName = templateName
        self.prepare = prepare
        self.logger = logger
    }

    /// Creates a new database copied from the template and returns its name (`prefix` plus a unique suffix).
    public func makeDatabase(prefix: String = "test") async throws -> String {
        try await preparedTemplate()
        counter += 1
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let name = "\(prefix.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "_" }.prefix(40))_\(counter)_\(suffix)"
        try await server.createDatabase(name, template: templateName)
        return name
    }

    private func preparedTemplate() async throws {
        if let prepared { return try await prepared.value }
        let task = Task { [server, templateName, prepare, logger] in
            try await server.dropDatabase(templateName)
            try await server.createDatabase(templateName)
            try await prepare(server.configuration(database: templateName), logger)
        }
        prepared = task
        try await task.value
    }
}
