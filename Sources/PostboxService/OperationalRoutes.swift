import Foundation
public import Hummingbird
import Logging
public import PostgresNIO
public import Prometheus

/// `GET /health` (the process is alive), `GET /ready` (the database answers; the schema was migrated before the
/// server started) and `GET /metrics` (Prometheus text).
public struct OperationalRoutes: Sendable {
    let client: PostgresClient
    let metrics: PrometheusCollectorRegistry
    let service: String

    /// Creates the routes for `service`.
    public init(service: String, client: PostgresClient, metrics: PrometheusCollectorRegistry) {
        self.client = client
        self.metrics = metrics
        self.service = service
    }

    /// Adds the routes to `router`.
    public func add(to router: Router<ServiceRequestContext>) {
        router.get("/health") { _, _ in Status(service: service, status: "alive") }
        router.get("/ready") { _, context in
            do {
                try await withTimeout(.seconds(2)) {
                    _ = try await client.query("SELECT 1", logger: context.logger)
                }
                return Status(service: service, status: "ready")
            } catch {
                context.logger.warning("not ready", metadata: ["error": "\(String(reflecting: error))"])
                throw Problem(.serviceUnavailable, "the database does not answer")
            }
        }
        router.get("/metrics") { _, _ in
            let text = metrics.emitToString()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text))
            )
        }
    }

    struct Status: ResponseEncodable {
        let service: String
        let status: String
    }
}

/// Runs `body`, throwing `CancellationError` if it takes longer than `timeout`.
func withTimeout<Result: Sendable>(
    _ timeout: Duration,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw CancellationError()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
