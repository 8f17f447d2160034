import Foundation
public import PostgresNIO

/// A PostgreSQL connection URL, `postgres://user[:password]@host[:port]/database`, parsed into client settings.
///
/// Only plain TCP is supported (`sslmode=disable` and no `sslmode` are accepted); the services and the embedded
/// server talk over loopback.
public struct DatabaseURL: Sendable, CustomStringConvertible {
    /// Settings for a connection pool.
    public let configuration: PostgresClient.Configuration
    /// The same target for a single connection outside the pool (the bus's LISTEN connection).
    public let connectionConfiguration: PostgresConnection.Configuration
    /// The user name in the URL.
    public let username: String
    /// The host name or address.
    public let host: String
    /// The port (5432 when the URL has none).
    public let port: Int
    /// The database name (the user name when the URL has none).
    public let database: String
    /// The URL as given.
    public let text: String

    /// Parses `text`; throws a ``DatabaseURLError`` that says what is wrong with it.
    public init(_ text: String) throws {
        guard let components = URLComponents(string: text),
            ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty,
            let user = components.user, !user.isEmpty
        else {
            throw DatabaseURLError(
                description: "'\(Self.masked(text))' is not a URL of the form postgres://user[:password]@host[:port]/database"
            )
        }
        if let mode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value, mode != "disable" {
            throw DatabaseURLError(description: "sslmode=\(mode) is not supported; use sslmode=disable or leave it out")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        let port = components.port ?? 5432
        configuration = PostgresClient.Configuration(
            host: host,
            port: port,
            username: user,
            password: components.password,
            database: database.isEmpty ? user : database,
            tls: .disable
        )
        connectionConfiguration = PostgresConnection.Configuration(
            host: host,
            port: port,
            username: user,
            password: components.password,
            database: database.isEmpty ? user : database,
            tls: .disable
        )
        username = user
        self.host = host
        self.port = port
        self.database = database.isEmpty ? user : database
        self.text = text
    }

    /// The URL with the password masked, for logs.
    public var description: String { Self.masked(text) }

    private static func masked(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return text }
        if components.password != nil { components.password = "***" }
        return components.string ?? text
    }
}

/// A database URL that cannot be used, with a one-line reason.
public struct DatabaseURLError: Error, CustomStringConvertible, Sendable {
    /// What is wrong, in one line.
    public let description: String
}
