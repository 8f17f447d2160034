public import Foundation
public import Logging
public import PostgresNIO
public import ServiceLifecycle

/// The PostgreSQL-backed message bus: transactional publish, subscriptions, consumers and their administration.
///
/// Run it as a `Service` after its `PostgresClient` and before its consumers:
///
/// ```swift
/// let bus = MessageBus(client: client, logger: logger)
/// let consumer = bus.consumer(Subscription(name: "inventory", topics: ["order.placed"])) { event, transaction in
///     let order = try event.decode(OrderPlaced.self)
///     try await transaction.connection.query("…", logger: transaction.logger)
///     try await transaction.publish(event.envelope.causing(StockReserved(orderId: order.orderId)))
/// }
/// let group = ServiceGroup(services: [client, bus, consumer], gracefulShutdownSignals: [.sigterm], logger: logger)
/// ```
///
/// Its `run()` keeps the LISTEN connection, sends coalesced wake-ups after commits, refreshes the queue gauges and
/// applies retention. See `docs/bus.md` for the delivery guarantees.
public final class MessageBus: Service, Sendable {
    /// The pool every bus statement runs on.
    public let client: PostgresClient
    /// The bus's settings.
    public let configuration: Configuration
    /// Dead-letter administration: list, inspect, replay, purge.
    public var deadLetters: DeadLetters { DeadLetters(bus: self) }

    let logger: Logger
    let listener: BusListener
    let notifier: Notifier
    private let store: DeliveryStore

    var instanceName: String { configuration.instanceName }

    /// - Parameters:
    ///   - client: A `PostgresClient` that runs in the same `ServiceGroup`, before the bus.
    ///   - configuration: Shared settings; the defaults suit most services.
    ///   - logger: Where the bus logs; consumers add `bus.subscription` to it.
    public init(client: PostgresClient, configuration: Configuration = Configuration(), logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.listener = BusListener(
            client: client,
            dedicatedConnection: configuration.listenerConnection,
            channel: configuration.notificationChannel,
            logger: logger
        )
        self.notifier = Notifier(
            client: client,
            channel: configuration.notificationChannel,
            interval: configuration.notificationInterval,
            listener: listener,
            logger: logger
        )
        self.store = DeliveryStore(client: client, logger: logger)
    }

    /// The migrations of the `bus` schema, for tools that apply schemas themselves.
    public static var schemaMigrator: SchemaMigrator { BusSchema.migrator }

    /// Creates or updates the `bus` schema. Safe to call from several processes at once.
    public func migrate() async throws {
        try await BusSchema.migrator.migrate(client: client, logger: logger)
    }

    /// Registers a subscription now, so that events published from now on are kept for it even before its
    /// consumer runs. Consumers register themselves when they start; call this at start-up to close that gap.
    public func register(_ subscription: Subscription) async throws {
        try await store.register(subscription)
    }

    /// Runs `body` in a transaction; events it publishes commit with its writes, and consumers are woken after
    /// the commit. If `body` throws, nothing is written, nothing is published, and its error is rethrown as is.
    public func withTransaction<Result: Sendable>(
        _ body: (BusTransaction) async throws -> Result
    ) async throws -> Result {
        do {
            let (result, _) = try await client.withCheckedTransaction(logger: logger) { connection in
                let transaction = BusTransaction(connection: connection, logger: logger)
                let result = try await body(transaction)
                return (result, transaction.publishedTopics)
            } afterCommit: { connection, committed in
                let (_, topics) = committed
                await notifier.committed(topics: topics, on: connection)
            }
            return result
        } catch let error as PostgresTransactionError {
            // The caller's own error comes back as itself when the rollback went through.
            if let closureError = error.closureError, error.rollbackError == nil { throw closureError }
            throw error
        }
    }

    /// Publishes events on their own, all or none (one statement, one round trip).
    public func publish(_ envelopes: [EventEnvelope], deliverAt: Date? = nil) async throws {
        try await store.publish(envelopes, deliverAt: deliverAt)
        notifier.committed(topics: Set(envelopes.map(\.type)))
    }

    /// Wakes the consumers of `topics` after a transaction of your own committed events published in SQL
    /// (`bus.publish_v1`, see docs/bus.md), as ``publish(_:deliverAt:)`` does after its own commit. Call it only
    /// after the commit: a consumer woken earlier finds nothing and sleeps until its next poll.
    public func wakeConsumers(of topics: Set<String>) {
        notifier.committed(topics: topics)
    }

    /// Wakes the consumers of `topics` after a statement on `connection`, which you still hold, committed events
    /// published in SQL: the wake-up goes out on that connection at once (unless another went out within
    /// ``Configuration/notificationInterval``), which spares the hop to the bus's own sender and a second lease
    /// from the pool. Call it only after the commit, never inside a transaction of your own.
    public func wakeConsumers(of topics: Set<String>, on connection: PostgresConnection) async {
        await notifier.committed(topics: topics, on: connection)
    }

    /// Publishes one event in a transaction of its own.
    public func publish(_ envelope: EventEnvelope, deliverAt: Date? = nil) async throws {
        try await publish([envelope], deliverAt: deliverAt)
    }

    /// A consumer that handles each event in a transaction of its own (or `handlerBatchSize` events per
    /// transaction, one call each). Add it to the `ServiceGroup` after the bus.
    public func consumer(
        _ subscription: Subscription,
        handler: @escaping @Sendable (ReceivedEvent, BusTransaction) async throws -> Void
    ) -> Consumer {
        Consumer(bus: self, subscription: subscription) { events, transaction in
            for event in events { try await handler(event, transaction) }
        }
    }

    /// A consumer whose handler receives up to ``Subscription/handlerBatchSize`` events per transaction.
    ///
    /// If a batch fails, its events are retried one per transaction, so one bad event cannot hold back the others.
    public func batchConsumer(_ subscription: Subscription, handler: @escaping Consumer.BatchHandler) -> Consumer {
        Consumer(bus: self, subscription: subscription, handler: handler)
    }

    /// Queue depths, leases, dead letters and oldest ages, per subscription.
    public func stats() async throws -> BusStats {
        try await BusStats.read(client: client, logger: logger)
    }

    /// Deletes handled deliveries and events older than the retention period; returns how many rows went.
    @discardableResult
    public func applyRetention() async throws -> Int {
        try await Retention(client: client, logger: logger).apply(olderThan: configuration.retention)
    }

    /// Keeps the LISTEN connection, sends wake-ups, refreshes gauges and applies retention until shutdown.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.listener.run() }
            group.addTask { await self.notifier.run() }
            group.addTask { await self.maintain() }
            await Self.untilShutdownOrCancellation()
            group.cancelAll()
        }
    }

    /// Returns on graceful shutdown or cancellation, whichever comes first — even one that came already.
    ///
    /// Not `gracefulShutdown()`: in swift-service-lifecycle 2.13.0 it can miss a cancellation that arrives while
    /// it is starting (its cancellation handler resumes a continuation that is not stored yet) and wait for ever.
    static func untilShutdownOrCancellation() async {
        let (stopped, stop) = AsyncStream<Void>.makeStream()
        await withGracefulShutdownHandler {
            for await _ in stopped {}
        } onGracefulShutdown: {
            stop.finish()
        }
    }

    private func maintain() async {
        let gauges = BusGauges()
        var lastRetention = ContinuousClock.now
        while !Task.isCancelled {
            do {
                gauges.update(with: try await stats())
                if ContinuousClock.now - lastRetention > .seconds(60) {
                    lastRetention = ContinuousClock.now
                    try await applyRetention()
                }
            } catch {
                logger.debug("bus maintenance failed", metadata: ["error": "\(DatabaseErrorText.describe(error))"])
            }
            try? await Task.sleep(for: configuration.maintenanceInterval)
        }
    }
}
