import Foundation
import PostgresNIO
import Synchronization
import Testing

@testable import PostboxBus

/// How a publish wakes several consumers of one subscription in one process.
@Suite("Wake-ups", .timeLimit(.minutes(2)))
struct WakeUpTests {
    /// Eight claim loops, one delivery at a time each, polling too rarely to matter within the test.
    private static func idleConsumers(
        _ harness: BusHarness,
        name: String,
        handler: @escaping @Sendable (ReceivedEvent) async throws -> Void
    ) -> [Consumer] {
        let subscription = fastSubscription(name, concurrency: 1, claimBatchSize: 1, pollInterval: .seconds(60))
        return (0..<8).map { _ in harness.bus.consumer(subscription) { event, _ in try await handler(event) } }
    }

    @Test func aPublishWakesOneIdleConsumerOfASubscriptionNotAllOfThem() async throws {
        try await withBus { harness in
            let handled = Atomic<Int>(0)
            let consumers = Self.idleConsumers(harness, name: "one-at-a-time") { _ in handled.add(1, ordering: .relaxed) }
            try await harness.bus.register(consumers[0].subscription)
            let emptyClaims = { consumers.reduce(0) { $0 + $1.emptyClaims.load(ordering: .relaxed) } }
            let events = 20
            let wasted = try await harness.running(consumers) {
                // Each claim loop looks once at start and finds nothing.
                try await eventually("every consumer made its first claim") { emptyClaims() >= consumers.count }
                let before = emptyClaims()
                for sequence in 1...events {
                    // A group with no idle member is woken whole, so publish only once every claim loop is idle again:
                    // on a loaded machine a loop still asking for its next due time would otherwise count as busy.
                    try await eventually("every consumer idle") { consumers.allSatisfy(\.isWaitingForWork) }
                    _ = try await harness.publish([TestEvent(sequence: sequence)])
                    try await eventually("event \(sequence) handled") { handled.load(ordering: .relaxed) == sequence }
                }
                return emptyClaims() - before
            }
            // Per event, about two: the consumer that claimed it wakes another (its claim of one was full), and the
            // process's own notification, coming back through LISTEN, wakes one more (40 for 20 events, measured).
            // Waking every idle consumer made about fourteen (281). Without waiting for idle consumers, a clean-clone
            // test run on the loaded machine counted 108.
            #expect(wasted <= 5 * events, "\(wasted) empty claims for \(events) events")
        }
    }

    /// `bus.publish_v1` publishes from inside a statement of the caller's own; the caller's wake-up after the commit
    /// (on its own or through the transaction) reaches consumers that would otherwise sleep for their 60 s poll.
    @Test func eventsPublishedInSQLReachEachSubscriptionOnceAndTheirWakeUpsWakeIdleConsumers() async throws {
        try await withBus { harness in
            try await harness.execute("CREATE TABLE app.orders (id uuid PRIMARY KEY)")
            let consumers = ["inventory", "payments"].map { name in
                harness.bus.consumer(fastSubscription(name, concurrency: 1, claimBatchSize: 1, pollInterval: .seconds(60))) {
                    event,
                    transaction in try await recordEffect(event, by: name, in: transaction)
                }
            }
            for consumer in consumers { try await harness.bus.register(consumer.subscription) }
            /// Inserts an order and publishes its event in one statement; whether the event was new.
            func placeAndPublish(_ id: UUID, sequence: Int, on connection: PostgresConnection) async throws -> Bool {
                let payload = try EventEnvelope(TestEvent(sequence: sequence, key: "k\(sequence)")).payload
                let rows = try await connection.query(
                    """
                    WITH o AS (INSERT INTO app.orders VALUES (\(UUID())) RETURNING id)
                    SELECT bus.publish_v1(\(id), \(TestEvent.eventType), 1, now(), 'sql-1', NULL, NULL, 'k', \(payload)::jsonb)
                    FROM o
                    """,
                    logger: testLogger
                )
                for try await new in rows.decode(Bool.self) { return new }
                throw HarnessError("bus.publish_v1 returned no row")
            }
            let first = UUID.timeOrdered()
            let second = UUID.timeOrdered()
            try await harness.running(consumers) {
                try await eventually("both consumers idle") { consumers.allSatisfy(\.isWaitingForWork) }
                let published = try await harness.client.withConnection { try await placeAndPublish(first, sequence: 1, on: $0) }
                #expect(published)
                harness.bus.wakeConsumers(of: [TestEvent.eventType])
                try await eventually("each subscription handled the first event", timeout: .seconds(20)) {
                    try await harness.effectCount() == 2
                }
                try await eventually("both consumers idle again") { consumers.allSatisfy(\.isWaitingForWork) }
                let secondIsNew = try await harness.bus.withTransaction { transaction in
                    let new = try await placeAndPublish(second, sequence: 2, on: try await transaction.connection)
                    transaction.wakeConsumersAfterCommit(of: [TestEvent.eventType])
                    return new
                }
                #expect(secondIsNew)
                try await eventually("each subscription handled the second event", timeout: .seconds(20)) {
                    try await harness.effectCount() == 4
                }
                // The same id again: skipped, with nothing delivered.
                #expect(try await harness.client.withConnection { try await placeAndPublish(first, sequence: 1, on: $0) } == false)
            }
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.events", as: Int.self) == 2)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 0)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.handled", as: Int.self) == 4)
            #expect(try await harness.scalar("SELECT count(*)::int FROM app.effects WHERE sequence_key = 'k1'", as: Int.self) == 2)
            #expect(
                try await harness.scalar(
                    "SELECT string_agg(DISTINCT correlation_id || '/' || ordering_key, ',') FROM bus.events",
                    as: String.self
                ) == "sql-1/k"
            )
        }
    }

    /// A handler's publish sends its wake-up on the connection that committed it, not through the notifier's loop,
    /// and the wake-up reaches a consumer in another process that polls too rarely to matter within the test.
    @Test func aHandlersWakeUpGoesOutOnTheConnectionThatCommittedIt() async throws {
        // No interval between wake-ups, so that every one may go out at once.
        try await withBus(configuration: .init(notificationInterval: .zero, instanceName: "test")) { harness in
            try await harness.withOtherProcess { other in
                let relay = harness.bus.consumer(fastSubscription("relay", concurrency: 1)) { event, transaction in
                    let sequence = try event.decode(TestEvent.self).sequence
                    try await transaction.publish(RelayedEvent(sequence: sequence))
                }
                let sink = fastSubscription("sink", topics: [RelayedEvent.eventType], concurrency: 1, pollInterval: .seconds(60))
                let sinkConsumer = other.consumer(sink) { event, transaction in try await recordEffect(event, by: "sink", in: transaction) }
                try await harness.bus.register(relay.subscription)
                try await other.register(sink)
                try await harness.running([relay, sinkConsumer]) {
                    try await eventually("the sink is idle") { sinkConsumer.isWaitingForWork }
                    // Published by the other process: its own loop wakes the relay here.
                    try await other.publish(try EventEnvelope(TestEvent(sequence: 1)))
                    try await eventually("the relayed event handled in the other process", timeout: .seconds(20)) {
                        try await harness.effectCount() == 1
                    }
                }
                #expect(harness.bus.notifier.sentOnCommittingConnection.load(ordering: .relaxed) == 1)
                #expect(harness.bus.notifier.sentByLoop.load(ordering: .relaxed) == 0)
            }
        }
    }

    /// A statement of the caller's that published in SQL (`wakeConsumers(of:on:)`) and a bus transaction send their
    /// wake-ups on their own connection too; a consumer in another process is woken by each.
    @Test func aCallersWakeUpGoesOutOnTheConnectionThatCommittedIt() async throws {
        try await withBus(configuration: .init(notificationInterval: .zero, instanceName: "test")) { harness in
            try await harness.withOtherProcess { other in
                let subscription = fastSubscription("woken", concurrency: 1, pollInterval: .seconds(60))
                let consumer = other.consumer(subscription) { event, transaction in try await recordEffect(event, by: "woken", in: transaction) }
                try await other.register(subscription)
                try await harness.running([consumer]) {
                    try await eventually("the consumer is idle") { consumer.isWaitingForWork }
                    let payload = try EventEnvelope(TestEvent(sequence: 1)).payload
                    try await harness.client.withConnection { connection in
                        try await connection.query(
                            """
                            SELECT bus.publish_v1(\(UUID.timeOrdered()), \(TestEvent.eventType), 1, now(), 'sql', NULL, NULL, NULL, \(payload)::jsonb)
                            """,
                            logger: testLogger
                        )
                        await harness.bus.wakeConsumers(of: [TestEvent.eventType], on: connection)
                    }
                    try await eventually("the first event handled", timeout: .seconds(20)) { try await harness.effectCount() == 1 }
                    try await eventually("the consumer is idle again") { consumer.isWaitingForWork }
                    try await harness.bus.withTransaction { try await $0.publish(TestEvent(sequence: 2)) }
                    try await eventually("the second event handled", timeout: .seconds(20)) { try await harness.effectCount() == 2 }
                }
                #expect(harness.bus.notifier.sentOnCommittingConnection.load(ordering: .relaxed) == 2)
                #expect(harness.bus.notifier.sentByLoop.load(ordering: .relaxed) == 0)
            }
        }
    }

    @Test func aConsumerWhoseAcknowledgementFoundNothingWaitsForNewsBeforeItClaimsAgain() async throws {
        try await withBus { harness in
            // The consumer runs in another process, so each publish reaches it once, through LISTEN.
            try await harness.withOtherProcess { other in
                let handled = Atomic<Int>(0)
                let subscription = fastSubscription("settled", concurrency: 1, claimBatchSize: 1, pollInterval: .seconds(60))
                let consumer = other.consumer(subscription) { _, _ in handled.add(1, ordering: .relaxed) }
                try await other.register(subscription)
                let events = 10
                let wasted = try await harness.running([consumer]) {
                    try await eventually("the consumer made its first claim") { consumer.emptyClaims.load(ordering: .relaxed) >= 1 }
                    let before = consumer.emptyClaims.load(ordering: .relaxed)
                    for sequence in 1...events {
                        _ = try await harness.publish([TestEvent(sequence: sequence)])
                        try await eventually("event \(sequence) handled") { handled.load(ordering: .relaxed) == sequence }
                    }
                    return consumer.emptyClaims.load(ordering: .relaxed) - before
                }
                // Each event is claimed on its wake-up and acknowledged by a statement that also looked for the next
                // and found none; claiming again as soon as the handler was done made one empty claim per event.
                #expect(wasted <= 2, "\(wasted) empty claims for \(events) events")
            }
        }
    }

    @Test func aBurstStillReachesEveryIdleConsumerOneClaimAfterAnother() async throws {
        try await withBus { harness in
            let started = Atomic<Int>(0)
            let released = Atomic<Bool>(false)
            let consumers = Self.idleConsumers(harness, name: "burst") { _ in
                started.add(1, ordering: .relaxed)
                let deadline = ContinuousClock.now + .seconds(30)
                while !released.load(ordering: .relaxed) && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            try await harness.bus.register(consumers[0].subscription)
            try await harness.running(consumers) {
                try await eventually("every consumer made its first claim") {
                    consumers.allSatisfy { $0.emptyClaims.load(ordering: .relaxed) >= 1 }
                }
                _ = try await harness.publish((1...consumers.count).map { TestEvent(sequence: $0) })
                // One handler per consumer at a time: all eight run at once only if the woken consumer, having claimed
                // a full batch, woke the next, and so on (the consumers' polls are a minute apart).
                try await eventually("all eight consumers handling at once") {
                    started.load(ordering: .relaxed) == consumers.count
                }
                released.store(true, ordering: .relaxed)
                try await eventually("all handled") { try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 0 }
            }
        }
    }
}

/// What the relay in ``WakeUpTests`` publishes for each event it handles.
private struct RelayedEvent: EventPayload {
    static let eventType = "test.relayed"
    static let eventVersion = 1
    var sequence: Int
}
