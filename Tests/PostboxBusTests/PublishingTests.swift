import EmbeddedPostgres
import Foundation
import PostboxBus
import PostgresNIO
import Testing

@Suite("Publishing", .timeLimit(.minutes(2)))
struct PublishingTests {
    @Test func rollbackPublishesNothing() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("orders"))
            try await harness.execute("CREATE TABLE app.orders (id uuid PRIMARY KEY)")
            struct Abort: Error {}
            await #expect(throws: Abort.self) {
                try await harness.bus.withTransaction { transaction in
                    try await transaction.connection.query("INSERT INTO app.orders VALUES (\(UUID()))", logger: testLogger)
                    try await transaction.publish(TestEvent(sequence: 1))
                    throw Abort()
                }
            }
            #expect(try await harness.scalar("SELECT count(*)::int FROM app.orders", as: Int.self) == 0)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.events", as: Int.self) == 0)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 0)
        }
    }

    @Test func commitPublishesTogetherWithTheBusinessWrite() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("orders"))
            try await harness.execute("CREATE TABLE app.orders (id uuid PRIMARY KEY)")
            let orderId = UUID()
            try await harness.bus.withTransaction { transaction in
                try await transaction.connection.query("INSERT INTO app.orders VALUES (\(orderId))", logger: testLogger)
                try await transaction.publish(
                    TestEvent(sequence: 1),
                    correlationId: "checkout-1",
                    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                )
            }
            #expect(try await harness.scalar("SELECT count(*)::int FROM app.orders", as: Int.self) == 1)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 1)
            #expect(try await harness.scalar("SELECT correlation_id FROM bus.events", as: String.self) == "checkout-1")
        }
    }

    @Test func aSecondPublishOfTheSameEventIdIsIgnored() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("orders"))
            let envelope = try EventEnvelope(TestEvent(sequence: 1))
            try await harness.bus.publish(envelope)
            try await harness.bus.publish(envelope)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.events", as: Int.self) == 1)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 1)
        }
    }

    @Test func eachSubscriptionReceivesItsOwnCopy() async throws {
        try await withBus { harness in
            let consumers = ["inventory", "payments"].map { name in
                harness.bus.consumer(fastSubscription(name)) { event, transaction in
                    try await recordEffect(event, by: name, in: transaction)
                }
            }
            try await harness.running(consumers) {
                try await eventually("both subscriptions registered") {
                    try await harness.scalar("SELECT count(*)::int FROM bus.subscriptions", as: Int.self) == 2
                }
                _ = try await harness.publish((1...5).map { TestEvent(sequence: $0) })
                try await eventually("10 effects") { try await harness.effectCount() == 10 }
            }
            #expect(try await harness.scalar("SELECT count(DISTINCT consumer)::int FROM app.effects", as: Int.self) == 2)
            #expect(try await harness.scalar("SELECT count(DISTINCT event_id)::int FROM app.effects", as: Int.self) == 5)
        }
    }

    @Test func delayedEventBecomesVisibleOnlyAtItsTime() async throws {
        try await withBus { harness in
            let consumer = harness.recordingConsumer(fastSubscription("later"))
            try await harness.bus.register(consumer.subscription)
            let deliverAt = Date().addingTimeInterval(1.5)
            try await harness.bus.publish(try EventEnvelope(TestEvent(sequence: 1)), deliverAt: deliverAt)
            try await harness.running([consumer]) {
                try await eventually("the delayed event is handled") { try await harness.effectCount() == 1 }
            }
            let handledAt = try await harness.scalar("SELECT at FROM app.effects", as: Date.self)
            #expect(handledAt >= deliverAt.addingTimeInterval(-0.05), "handled at \(handledAt), due at \(deliverAt)")
        }
    }

    /// An idle consumer sleeps until the next delivery is due (`NextVisibleAt`), not for its whole poll interval:
    /// here the interval is ten minutes, far past the wait's deadline. The publish's notification wakes the consumer
    /// while the event is not yet due; after that only the due time can.
    @Test func anIdleConsumerWakesWhenADelayedEventFallsDue() async throws {
        try await withBus { harness in
            let consumer = harness.recordingConsumer(fastSubscription("due", pollInterval: .seconds(600)))
            try await harness.bus.register(consumer.subscription)
            try await harness.running([consumer]) {
                try await harness.bus.publish(
                    try EventEnvelope(TestEvent(sequence: 1)),
                    deliverAt: Date().addingTimeInterval(1)
                )
                try await eventually("the delayed event is handled without a poll") {
                    try await harness.effectCount() == 1
                }
            }
        }
    }

    @Test func migratingFromManyProcessesAtOnceAppliesEachVersionOnce() async throws {
        let server = try await EmbeddedPostgres.shared()
        let database = "fresh_\(UUID().uuidString.prefix(8).lowercased())"
        try await server.createDatabase(database)
        let config = server.configuration(database: database)
        try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let client = PostgresClient(configuration: config, backgroundLogger: testLogger)
                    return try await withThrowingTaskGroup(of: [Int].self) { inner in
                        inner.addTask {
                            await client.run()
                            return []
                        }
                        defer { inner.cancelAll() }
                        return try await MessageBus.schemaMigrator.migrate(client: client, logger: testLogger)
                    }
                }
            }
            var applied: [Int] = []
            for try await versions in group { applied += versions }
            #expect(
                applied.sorted() == MessageBus.schemaMigrator.migrations.map(\.version),
                "each version applied exactly once across the four processes"
            )
        }
    }
}
