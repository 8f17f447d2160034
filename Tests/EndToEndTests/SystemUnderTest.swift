import EmbeddedPostgres
import Foundation
import Logging
import PostboxService
import PostgresNIO
import Subprocess
import Synchronization
import Testing

/// A fresh database on the shared embedded PostgreSQL, set up for the services, and the four executables
/// configured to use it on free ports.
struct SystemUnderTest: Sendable {
    let server: EmbeddedPostgres
    let database: String
    /// The card processor's port is chosen up front (payments needs its URL); the others bind port 0 and the test
    /// reads the port each logs, so no other test can take it between choosing and binding.
    let gatewayPort: Int
    private let learned = LearnedPorts()

    var ports: [String: Int] { learned.ports.withLock { $0 }.merging(["payment-gateway": gatewayPort]) { $1 } }

    static let logger: Logger = {
        var logger = Logger(label: "postbox.e2e")
        logger.logLevel = .error
        return logger
    }()

    static func make(_ name: String = #function) async throws -> SystemUnderTest {
        let server = try await EmbeddedPostgres.shared(logger: logger)
        let database = "e2e_\(name.prefix(while: { $0 != "(" }).lowercased().prefix(30))_\(UUID().uuidString.prefix(8).lowercased())"
        try await server.createDatabase(database)
        try await SchemaSetup.prepare(configuration: server.configuration(database: database), logger: logger)
        return SystemUnderTest(server: server, database: database, gatewayPort: try FreePort.next())
    }

    func url(_ service: String) -> String { "http://127.0.0.1:\(ports[service]!)" }

    func spec(_ service: String, extra: [String: String] = [:]) -> ProcessSpec {
        let role = service == "payment-gateway" ? "payment_gateway" : service
        var environment = [
            "DATABASE_URL": "postgres://\(role)@127.0.0.1:\(server.port)/\(database)",
            "HTTP_PORT": service == "payment-gateway" ? "\(gatewayPort)" : "0",
            "LOG_LEVEL": "info",
        ]
        if service == "payments" { environment["PAYMENT_GATEWAY_URL"] = url("payment-gateway") }
        return ProcessSpec(name: service, executable: builtProduct(service), environment: environment.merging(extra) { $1 })
    }

    var allSpecs: [ProcessSpec] { ["payment-gateway", "inventory", "orders", "payments"].map { spec($0) } }

    /// Waits until every launched service answers `/ready`, showing their output if one does not.
    func waitUntilReady(_ processes: [RunningProcess]) async throws {
        for process in processes {
            try await eventually("\(process.name) ready\n\(process.tail)") {
                if ports[process.name] == nil,
                    let port = process.lines.last(where: { $0.hasSuffix("listening") })?
                        .split(separator: " ").first(where: { $0.hasPrefix("http.port=") })
                        .flatMap({ Int($0.dropFirst("http.port=".count)) })
                {
                    learned.ports.withLock { $0[process.name] = port }
                }
                guard let port = ports[process.name] else { return false }
                return await HTTP.isReady(port: port)
            }
        }
    }

    /// The rows of `query` as the superuser (a test may look into every schema).
    func rows<Row: Sendable>(_ query: PostgresQuery, as: Row.Type = Row.self) async throws -> [Row] where Row: PostgresDecodable {
        try await withSuperuser { connection in
            var result: [Row] = []
            for try await row in try await connection.query(query, logger: Self.logger).decode(Row.self) { result.append(row) }
            return result
        }
    }

    func withSuperuser<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        try await server.withConnection(database: database, body)
    }
}

/// The ports the services reported, shared by copies of a ``SystemUnderTest``.
final class LearnedPorts: Sendable {
    let ports = Mutex<[String: Int]>([:])
}
