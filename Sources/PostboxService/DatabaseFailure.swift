public import Logging
import PostboxBus
import PostgresNIO

/// A database that cannot be used, in one line a person can act on.
///
/// PostgresNIO's `PSQLError` describes itself as "Generic description to prevent accidental leakage of sensitive
/// data" so that logs stay clean; a command run against the user's own database owes them the server's reason
/// instead: a refused connection, an unknown role or database, a bus that was never set up there.
public struct DatabaseFailure: Error, CustomStringConvertible, Sendable {
    /// What went wrong and, where it is known, what to do about it.
    public let description: String

    /// `error` as met while using `database`.
    public init(_ error: any Error, database: DatabaseURL) {
        let target = "\(database.host):\(database.port)/\(database.database) as \(database.username)"
        let error = DatabaseErrorText.cause(of: error)
        if let failure = error as? DatabaseFailure {
            description = failure.description
            return
        }
        guard let error = error as? PSQLError else {
            description = "\(target): \(error)"
            return
        }
        if let server = error.serverInfo, let message = server[.message], let said = DatabaseErrorText.serverMessage(error) {
            var line = "\(target): \(said)"
            if ["3F000", "42P01", "42883"].contains(server[.sqlState] ?? ""), message.contains("bus") {
                line += "; the bus is not set up in this database: run `postbox db setup --database-url ADMIN_URL` first"
            }
            description = line
        } else if error.code == .connectionError || error.code == .serverClosedConnection {
            let reason = error.underlying.map { "\($0)" } ?? "\(error.code)"
            description = "cannot connect to \(target): \(reason)"
        } else {
            description = "\(target): \(String(reflecting: error))"
        }
    }
}

extension DatabaseURL {
    /// Opens one connection and closes it again, throwing a ``DatabaseFailure`` with the reason if that fails.
    ///
    /// A `PostgresClient` keeps retrying a server it cannot reach, or a role it may not log in as, and its callers
    /// wait without a word; a single connection fails at once with what the server said.
    public func checkConnection(logger: Logger) async throws {
        do {
            let connection = try await PostgresConnection.connect(configuration: connectionConfiguration, id: 0, logger: logger)
            try? await connection.close()
        } catch {
            throw DatabaseFailure(error, database: self)
        }
    }
}
