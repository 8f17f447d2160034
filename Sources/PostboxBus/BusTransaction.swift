public import Foundation
public import Logging
public import PostgresNIO
import Synchronization

/// A database transaction in which business writes and bus publishes commit or roll back together.
///
/// Handlers receive one; producers get one from ``MessageBus/withTransaction(_:)``. Use ``connection`` for the
/// business writes and ``publish(_:deliverAt:)`` for events. Wake-ups for consumers are sent after the commit,
/// never inside the transaction. Use it from one task at a time, as any transaction.
///
/// In a handler the transaction begins when it is first needed — the first `await transaction.connection` or
/// publish — so a handler that writes nothing is acknowledged in one statement, without BEGIN and COMMIT, and one
/// that calls the outside world before it writes does not hold a transaction open meanwhile.
public final class BusTransaction: Sendable {
    private struct State {
        var begun: Bool
        var topics: Set<String> = []
    }

    private let underlying: PostgresConnection
    /// The logger to pass to your queries.
    public let logger: Logger
    private let state: Mutex<State>

    /// - Parameter begun: Whether the caller has begun the transaction already; if not, it begins on first use.
    init(connection: PostgresConnection, logger: Logger, begun: Bool = true) {
        self.underlying = connection
        self.logger = logger
        self.state = Mutex(State(begun: begun))
    }

    /// The transaction's connection: run your own statements on it. Asking for it begins the transaction.
    public var connection: PostgresConnection {
        get async throws {
            if state.withLock({ state in defer { state.begun = true }; return !state.begun }) {
                try await underlying.query("BEGIN", logger: logger)
            }
            return underlying
        }
    }

    /// Whether the transaction has begun (always, for a producer's).
    var hasBegun: Bool { state.withLock { $0.begun } }

    /// Publishes events in this transaction; with `deliverAt`, they become visible to consumers only then.
    public func publish(_ envelopes: [EventEnvelope], deliverAt: Date? = nil) async throws {
        try await DeliveryStore.publish(envelopes, deliverAt: deliverAt, on: connection, logger: logger)
        state.withLock { $0.topics.formUnion(envelopes.map(\.type)) }
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

    var publishedTopics: Set<String> { state.withLock { $0.topics } }
}
