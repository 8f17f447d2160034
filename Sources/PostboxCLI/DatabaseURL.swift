import Foundation
import PostgresNIO

/// Parses `postgres://user[:password]@host[:port]/database[?sslmode=disable]` into client settings.
struct DatabaseURL: Sendable, CustomStringConvertible {
    let configuration: PostgresClient.Configuration
    /// The same target for a single connection outside the pool (the bus's LISTEN connection).
    let connectionConfiguration: PostgresConnection.Configuration
    let text: String

    init(_ text: String) throws {
        guard let components = URLComponents(string: text),
            ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty,
            let user = components.user, !user.isEmpty
        else {
            throw ValidationFailure("'\(text)' is not a URL of the form postgres://user[:password]@host[:port]/database")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database.isEmpty ? user : database, tls: .disable
        )
        connectionConfiguration = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database.isEmpty ? user : database, tls: .disable
        )
        self.text = text
    }

    /// The URL with the password masked, for logs.
    var description: String {
        guard var components = URLComponents(string: text) else { return text }
        if components.password != nil { components.password = "***" }
        return components.string ?? text
    }
}

/// A one-line error for bad command-line input.
struct ValidationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
