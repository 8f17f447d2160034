import EmbeddedPostgres
public import Foundation
import Logging
public import PostboxBus
public import PostgresNIO
import ServiceLifecycle
import Synchronization

extension PostboxSystem {
    /// Runs `body` with a bus on this scenario's database, as the superuser, for injecting and repairing events.
    public func withBus<Result: Sendable>(_ body: (MessageBus) async throws -> Result) async throws -> Result {
        let client = PostgresClient(configuration: server.configuration(database: database), backgroundLogger: PostboxSystem.logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(MessageBus(client: client, logger: PostboxSystem.logger))
        }
    }

    /// Publishes events as a producer would (duplicates by id are ignored by the bus).
    public func publish(_ envelopes: [EventEnvelope], deliverAt: Date? = nil) async throws {
        record("harness", "published \(envelopes.map(\.type).joined(separator: ", "))" + (deliverAt == nil ? "" : " (delayed)"))
        try await withBus { try await $0.publish(envelopes, deliverAt: deliverAt) }
    }

    /// Delivers events of `type` to `subscription` once more, as a redelivery after a lost acknowledgement would.
    /// Returns how many deliveries were added.
    @discardableResult
    public func duplicateDeliveries(ofType type: String, to subscription: String) async throws -> Int {
        record("harness", "duplicate deliveries of \(type) to \(subscription)")
        return try await withDatabase { db in
            let rows = try await db.query(
                """
                WITH added AS (
                    INSERT INTO bus.deliveries (subscription, event_id, ordering_key, visible_at)
                    SELECT \(subscription), id, ordering_key, now() FROM bus.events WHERE type = \(type) RETURNING 1)
                SELECT count(*)::int FROM added
                """,
                logger: PostboxSystem.logger
            )
            for try await count in rows.decode(Int.self) { return count }
            return 0
        }
    }

    /// How many times `subscription` handled events of `type`.
    public func handledCount(_ subscription: String, type: String) async throws -> Int {
        try await scalar(
            """
            SELECT count(*)::int FROM bus.handled h JOIN bus.events e ON e.id = h.event_id
            WHERE h.subscription = \(subscription) AND e.type = \(type)
            """
        ) ?? 0
    }

    /// The first column of the first row of `query`, as the superuser.
    public func scalar<Value: PostgresDecodable & Sendable>(_ query: PostgresQuery, as: Value.Type = Value.self) async throws -> Value? {
        try await withDatabase { db in
            for try await value in try await db.query(query, logger: PostboxSystem.logger).decode(Value.self) { return value }
            return nil
        }
    }

    /// The dead letters, oldest first.
    public func deadLetters() async throws -> [DeadLetter] {
        try await withBus { try await $0.deadLetters.list() }
    }

    /// Replays every dead letter; returns how many.
    @discardableResult
    public func replayDeadLetters() async throws -> Int {
        record("harness", "replayed dead letters")
        return try await withBus { try await $0.deadLetters.replay() }
    }

    /// Starts an in-process stand-in for a missing service: a consumer of `subscription` that runs `handler` for
    /// each event (publishing through its transaction) until the scenario ends.
    public func standIn(
        _ subscription: Subscription,
        handler: @escaping @Sendable (ReceivedEvent, BusTransaction) async throws -> Void
    ) async throws {
        let client = PostgresClient(configuration: server.configuration(database: database), backgroundLogger: PostboxSystem.logger)
        let bus = MessageBus(
            client: client,
            configuration: .init(
                instanceName: "stand-in-\(subscription.name)",
                listenerConnection: server.connectionConfiguration(database: database)
            ),
            logger: PostboxSystem.logger
        )
        let consumer = bus.consumer(subscription, handler: handler)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: client), .init(service: bus), .init(service: consumer)], logger: PostboxSystem.logger)
        )
        let task = Task { _ = try? await group.run() }
        try await withBus { try await $0.register(subscription) }
        addStandIn(StandIn(name: subscription.name, group: group, task: task))
        record("harness", "stand-in for \(subscription.name) started")
    }
}

/// A running in-process stand-in.
final class StandIn: Sendable {
    let name: String
    let group: ServiceGroup
    let task: Task<Void, Never>

    init(name: String, group: ServiceGroup, task: Task<Void, Never>) {
        self.name = name
        self.group = group
        self.task = task
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        await task.value
    }
}
