public import Foundation
public import Logging
public import PostgresNIO
import Synchronization

/// A database transaction in which business writes and bus publishes commit or roll back together.
///
/// Handlers receive one; producers get one from ``MessageBus/withTransaction(_:)``. Use ``connection`` for the
/// business writes and ``publish(_:deliverAt:)`` for events. Wake-ups for consumers are sent after the commit,
/// never inside the transaction.
public final class BusTransaction: Sendable {
    /// The transaction's connection: run your own statements on it.
    public let connection: PostgresConnection
    /// The logger to pass to your queries.
    public let logger: Logger
    private let topics = Mutex<Set<String>>([])

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Publishes events in this transaction; with `deliverAt`, they become visible to consumers only then.
    public func publish(_ envelopes: [EventEnvelope], deliverAt: Date? = nil) async throws {
        try await DeliveryStore.publish(envelopes, deliverAt: deliverAt, on: connection, logger: logger)
        topics.withLock { $0.formUnion(envelopes.map(\.type)) }
    }

    /// Publishes one event in this transaction.
    public func publish(_ envelope: EventEnvelope, deliverAt: Date? = nil) async throws {
        try await publish([envelope], deliverAt: deliverAt)
    }

    /// Publishes a typed event in this transaction.
    public func publish<Payload: EventPayload>(
        _ payload: Payload, correlationId: String? = nil, causationId: UUID? = nil, traceparent: String? = nil,
        orderingKey: String? = nil, deliverAt: Date? = nil
    ) async throws {
        try await publish(
            EventEnvelope(
                payload, correlationId: correlationId, causationId: causationId, traceparent: traceparent,
                orderingKey: orderingKey
            ),
            deliverAt: deliverAt
        )
    }

    var publishedTopics: Set<String> { topics.withLock { $0 } }
}
