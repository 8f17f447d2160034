import EmbeddedPostgres
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostboxBus
import PostboxService
import PostgresNIO
import Prometheus
import ServiceLifecycle
import Testing

/// One service under test: a fresh system database, the service's client and bus as its own role, its consumers
/// running, and its router driven through HummingbirdTesting.
struct ServiceWorld: Sendable {
    let server: EmbeddedPostgres
    let database: String
    let context: ServiceContext

    /// The first column of the first row of `query`, run as the superuser.
    func scalar<Value: PostgresDecodable & Sendable>(_ query: PostgresQuery, as: Value.Type = Value.self) async throws -> Value? {
        try await withSuperuser { connection in
            let rows = try await connection.query(query, logger: testLogger)
            for try await value in rows.decode(Value.self) { return value }
            return nil
        }
    }

    /// Runs `body` on a connection as the superuser (to look at any schema, as a test may).
    func withSuperuser<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        try await server.withConnection(database: database, body)
    }

    /// The URL of `role` in this world's database.
    func url(role: String) -> String { "postgres://\(role)@127.0.0.1:\(server.port)/\(database)" }
}

/// Builds the service `name` (connecting as `role`) on a fresh database, runs its client, bus and consumers,
/// and hands `body` a router test client and the world.
func withService<Result: Sendable>(
    _ name: String,
    role: String,
    usesBus: Bool = true,
    test: String = #function,
    build: @escaping @Sendable (ServiceContext) -> ServiceParts,
    _ body: @Sendable (any TestClientProtocol, ServiceWorld) async throws -> Result
) async throws -> Result {
    let (server, database): (EmbeddedPostgres, String)
    do {
        (server, database) = try await ServiceDatabases.make(prefix: String(test.prefix(while: { $0 != "(" })))
    } catch {
        throw DatabaseCallFailed.describing(error)
    }
    let url = "postgres://\(role)@127.0.0.1:\(server.port)/\(database)"
    let settings = try ServiceSettings(reader: .environment(["DATABASE_URL": url]), defaultPort: 0)
    let client = PostgresClient(configuration: settings.database.configuration, backgroundLogger: testLogger)
    let bus = MessageBus(
        client: client,
        configuration: .init(instanceName: "\(name)-test", listenerConnection: settings.database.connectionConfiguration),
        logger: testLogger
    )
    let context = ServiceContext(
        name: name,
        settings: settings,
        client: client,
        bus: bus,
        logger: testLogger,
        metrics: PrometheusCollectorRegistry()
    )
    let parts = build(context)
    let app = context.application(parts: parts)
    let world = ServiceWorld(server: server, database: database, context: context)
    let services: [any Service] = [client] + (usesBus ? [bus] : []) + parts.consumers
    let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: testLogger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            for consumer in parts.consumers { try await bus.register(consumer.subscription) }
            let result = try await app.test(.router) { client in try await body(client, world) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
            throw DatabaseCallFailed.describing(error)
        }
    }
}

/// A database error as the server stated it, so that a failed test says what went wrong: `PSQLError` describes
/// itself only as "Generic description to prevent accidental leakage of sensitive data".
struct DatabaseCallFailed: Error, CustomStringConvertible {
    let description: String

    /// `error` itself unless it is a database error.
    static func describing(_ error: any Error) -> any Error {
        let cause = DatabaseErrorText.cause(of: error)
        guard cause is PSQLError else { return error }
        return DatabaseCallFailed(description: DatabaseErrorText.describe(cause))
    }
}

/// Polls `condition` until it holds or `timeout` passes; then fails with `message` and what it last saw.
func eventually(
    _ message: @autoclosure () -> String,
    timeout: Duration = .seconds(15),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out after \(timeout): \(message())", sourceLocation: sourceLocation)
    throw TimedOut()
}

struct TimedOut: Error {}

extension TestClientProtocol {
    /// Sends `json` (if any) with `headers` and returns the response.
    @discardableResult
    func send(
        _ method: HTTPRequest.Method,
        _ uri: String,
        json: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = headers
        if json != nil { headers[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    }
}

extension TestResponse {
    /// The body decoded as JSON.
    func decode<Value: Decodable>(_ type: Value.Type = Value.self) throws -> Value {
        try JSONDecoder().decode(Value.self, from: Data(body.readableBytesView))
    }

    /// The problem document of an error response, checking its content type.
    func problem() throws -> ProblemDetails {
        #expect(headers[.contentType] == "application/problem+json")
        return try decode(ProblemDetails.self)
    }

    var text: String { String(buffer: body) }
}
