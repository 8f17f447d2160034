import Foundation
import PostgresNIO
import Synchronization
import Testing

@testable import PostboxBus

/// The acknowledgement that also claims the next deliveries, in the handler's transaction.
@Suite("Acknowledgement", .timeLimit(.minutes(2)))
struct AcknowledgementTests {
    private let lease = Duration.seconds(30)

    @Test func anAcknowledgementClaimsTheNextDeliveryInTheSameTransaction() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("chain"))
            let published = try await harness.publish([TestEvent(sequence: 1), TestEvent(sequence: 2)])
            let store = DeliveryStore(client: harness.client, logger: testLogger)
            let first = try #require(try await store.claim(subscription: "chain", limit: 1, lease: lease, owner: "a").first)
            let acknowledged = try await harness.client.withTransaction(logger: testLogger) { connection in
                try await DeliveryStore.acknowledge(
                    deliveryIds: [first.deliveryId],
                    token: first.leaseToken,
                    owner: "a",
                    claimNext: 1,
                    subscription: "chain",
                    lease: lease,
                    on: connection,
                    logger: testLogger
                )
            }
            #expect(acknowledged.deleted == 1 && acknowledged.recorded == 1)
            let next = try #require(acknowledged.next.first)
            #expect(acknowledged.next.count == 1)
            #expect(next.event.id == published[1].id)
            #expect(next.event.attempt == 1)
            #expect(!next.tookOverLease && !next.alreadyHandled)
            #expect(try next.event.decode(TestEvent.self).sequence == 2)
            // The claim committed with the acknowledgement: its lease is in the table, and nothing else is visible.
            #expect(
                try await harness.scalar(
                    "SELECT lease_token FROM bus.deliveries WHERE id = \(next.deliveryId)",
                    as: UUID.self
                ) == next.leaseToken
            )
            #expect(try await store.claim(subscription: "chain", limit: 1, lease: lease, owner: "b").isEmpty)
        }
    }

    @Test func aRolledBackAcknowledgementClaimsNothing() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("rollback"))
            _ = try await harness.publish([TestEvent(sequence: 1), TestEvent(sequence: 2)])
            let store = DeliveryStore(client: harness.client, logger: testLogger)
            let first = try #require(try await store.claim(subscription: "rollback", limit: 1, lease: lease, owner: "a").first)
            struct HandlerFailed: Error {}
            await #expect(throws: PostgresTransactionError.self) {
                try await harness.client.withTransaction(logger: testLogger) { connection in
                    let acknowledged = try await DeliveryStore.acknowledge(
                        deliveryIds: [first.deliveryId],
                        token: first.leaseToken,
                        owner: "a",
                        claimNext: 1,
                        subscription: "rollback",
                        lease: lease,
                        on: connection,
                        logger: testLogger
                    )
                    #expect(acknowledged.next.count == 1)
                    throw HandlerFailed()
                }
            }
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.handled") == 0)
            let again = try await store.claim(subscription: "rollback", limit: 2, lease: lease, owner: "b")
            // The first is still leased to "a"; the second was never claimed, so this is its first attempt.
            #expect(again.count == 1)
            #expect(again.first?.event.attempt == 1)
        }
    }

    @Test func anAcknowledgementClaimsTheNextEventOfItsOwnKeyInOrder() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("keyed"))
            let published = try await harness.publish(
                [TestEvent(sequence: 1, key: "k"), TestEvent(sequence: 2, key: "k")],
                orderingKey: { $0.key }
            )
            let store = DeliveryStore(client: harness.client, logger: testLogger)
            let first = try #require(try await store.claim(subscription: "keyed", limit: 2, lease: lease, owner: "a").first)
            #expect(first.event.id == published[0].id)
            let acknowledged = try await harness.client.withTransaction(logger: testLogger) { connection in
                try await DeliveryStore.acknowledge(
                    deliveryIds: [first.deliveryId],
                    token: first.leaseToken,
                    owner: "a",
                    claimNext: 1,
                    subscription: "keyed",
                    lease: lease,
                    on: connection,
                    logger: testLogger
                )
            }
            // The acknowledged delivery no longer holds its key back: the key's next event comes with the commit.
            #expect(acknowledged.deleted == 1)
            #expect(acknowledged.next.map(\.event.id) == [published[1].id])
            #expect(try await store.claim(subscription: "keyed", limit: 2, lease: lease, owner: "b").isEmpty)
        }
    }

    @Test func anAcknowledgementDoesNotClaimPastAnotherConsumersHeadOfTheKey() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("heads"))
            let published = try await harness.publish(
                [TestEvent(sequence: 1, key: "x"), TestEvent(sequence: 2, key: "y"), TestEvent(sequence: 3, key: "y")],
                orderingKey: { $0.key }
            )
            let store = DeliveryStore(client: harness.client, logger: testLogger)
            let claimed = try await store.claim(subscription: "heads", limit: 2, lease: lease, owner: "a")
            #expect(claimed.map(\.event.id) == [published[0].id, published[1].id])
            // Acknowledging x must not take y's second event while y's first is still leased to someone.
            let acknowledged = try await harness.client.withTransaction(logger: testLogger) { connection in
                try await DeliveryStore.acknowledge(
                    deliveryIds: [claimed[0].deliveryId],
                    token: claimed[0].leaseToken,
                    owner: "a",
                    claimNext: 1,
                    subscription: "heads",
                    lease: lease,
                    on: connection,
                    logger: testLogger
                )
            }
            #expect(acknowledged.deleted == 1 && acknowledged.next.isEmpty)
        }
    }

    @Test func aBatchAcknowledgementClaimsUpToItsLimit() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("batched"))
            let published = try await harness.publish((1...5).map { TestEvent(sequence: $0) })
            let store = DeliveryStore(client: harness.client, logger: testLogger)
            let firstTwo = try await store.claim(subscription: "batched", limit: 2, lease: lease, owner: "a")
            #expect(firstTwo.count == 2)
            let acknowledged = try await harness.client.withTransaction(logger: testLogger) { connection in
                try await DeliveryStore.acknowledge(
                    deliveryIds: firstTwo.map(\.deliveryId),
                    token: firstTwo[0].leaseToken,
                    owner: "a",
                    claimNext: 2,
                    subscription: "batched",
                    lease: lease,
                    on: connection,
                    logger: testLogger
                )
            }
            #expect(acknowledged.deleted == 2 && acknowledged.recorded == 2)
            #expect(acknowledged.next.map(\.event.id) == [published[2].id, published[3].id])
            let zero = try await harness.client.withTransaction(logger: testLogger) { connection in
                try await DeliveryStore.acknowledge(
                    deliveryIds: acknowledged.next.map(\.deliveryId),
                    token: acknowledged.next[0].leaseToken,
                    owner: "a",
                    claimNext: 0,
                    subscription: "batched",
                    lease: lease,
                    on: connection,
                    logger: testLogger
                )
            }
            #expect(zero.deleted == 2 && zero.next.isEmpty)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.handled") == 4)
        }
    }

    @Test func aConsumerWorksThroughABacklogOneTransactionPerEventAndEachOnce() async throws {
        try await withBus { harness in
            let subscription = fastSubscription("backlog", concurrency: 2, claimBatchSize: 1)
            try await harness.bus.register(subscription)
            _ = try await harness.publish((1...200).map { TestEvent(sequence: $0) })
            try await harness.running([harness.recordingConsumer(subscription)]) {
                try await eventually("every event handled") { try await harness.effectCount() == 200 }
            }
            #expect(try await harness.scalar("SELECT count(DISTINCT event_id)::int FROM app.effects") == 200)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries") == 0)
            // Each was handled at its first attempt: no claim by an acknowledgement was lost or taken over.
            #expect(try await harness.scalar("SELECT max(attempts)::int FROM bus.handled") == 1)
        }
    }

    @Test func aHandlerThatWritesNothingIsAcknowledgedWithoutATransactionAndOnlyOnce() async throws {
        try await withBus { harness in
            let subscription = fastSubscription("no-writes", concurrency: 2)
            try await harness.bus.register(subscription)
            let published = try await harness.publish((1...20).map { TestEvent(sequence: $0) })
            let seen = OrderRecorder()
            let begun = OrderRecorder()
            let consumer = harness.bus.consumer(subscription) { event, transaction in
                seen.append(try event.decode(TestEvent.self).sequence)
                begun.append(transaction.hasBegun ? 1 : 0)
            }
            try await harness.running([consumer]) {
                try await eventually("all 20 acknowledged") {
                    try await harness.scalar("SELECT count(*)::int FROM bus.handled WHERE subscription = 'no-writes'") == 20
                }
            }
            #expect(seen.values.sorted() == Array(1...20))
            #expect(begun.values.allSatisfy { $0 == 0 })
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries") == 0)
            let handled = try await harness.scalar(
                "SELECT count(*)::int FROM bus.handled WHERE event_id = ANY(\(published.map(\.id))::uuid[])",
                as: Int.self
            )
            #expect(handled == 20)
        }
    }

    @Test func aHandlerThatPublishesAfterAnOutsideCallCommitsBothWithTheAcknowledgement() async throws {
        try await withBus { harness in
            let subscription = fastSubscription("late-begin")
            let downstream = fastSubscription("downstream", topics: ["test.followed"])
            try await harness.bus.register(subscription)
            try await harness.bus.register(downstream)
            _ = try await harness.publish([TestEvent(sequence: 1), TestEvent(sequence: 2)])
            let consumer = harness.bus.consumer(subscription) { event, transaction in
                // Nothing is open while the handler works outside the database.
                #expect(!transaction.hasBegun)
                try await recordEffect(event, by: "late-begin", in: transaction)
                #expect(transaction.hasBegun)
                try await transaction.publish(EventEnvelope(type: "test.followed", payload: #"{"n":1}"#))
                if try event.decode(TestEvent.self).sequence == 2 { throw HarnessError("the second always fails") }
            }
            try await harness.running([consumer]) {
                try await eventually("the first committed with its follow-up") { try await harness.effectCount() == 1 }
            }
            // Each time the second fails, its write and its publish roll back with it: one effect, one follow-up.
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries WHERE subscription = 'downstream'") == 1)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.handled WHERE subscription = 'late-begin'") == 1)
        }
    }

    @Test func aHandlerThatOnlyPublishesCommitsItsEventsWithTheAcknowledgementAlone() async throws {
        try await withBus { harness in
            let relay = fastSubscription("relay")
            let sink = fastSubscription("sink", topics: ["test.relayed"])
            try await harness.bus.register(relay)
            try await harness.bus.register(sink)
            let published = try await harness.publish((1...5).map { TestEvent(sequence: $0) })
            let begun = OrderRecorder()
            let relaying = harness.bus.consumer(relay) { event, transaction in
                try await transaction.publish(
                    EventEnvelope(type: "test.relayed", causationId: event.id, payload: #"{"n":1}"#)
                )
                begun.append(transaction.hasBegun ? 1 : 0)
            }
            try await harness.running([relaying, harness.recordingConsumer(sink)]) {
                try await eventually("every relayed event handled") { try await harness.effectCount() == 5 }
            }
            // Publishing did not open a transaction: each relay was one statement with its acknowledgement.
            #expect(begun.values == [0, 0, 0, 0, 0])
            let causes = try await harness.scalar(
                "SELECT array_agg(causation_id ORDER BY causation_id) FROM bus.events WHERE type = 'test.relayed'",
                as: [UUID].self
            )
            #expect(causes == published.map(\.id).sorted { $0.uuidString < $1.uuidString })
        }
    }

    @Test func aPublishHeldForTheAcknowledgementIsDroppedWhenTheLeaseWasLost() async throws {
        try await withBus { harness in
            let attempts = try await relayOneEvent(harness, subscription: "relay-lost") { event, transaction in
                try await transaction.publish(EventEnvelope(type: "test.relayed", payload: #"{"n":1}"#))
                if event.attempt == 1 {
                    // Another consumer takes the lease over before this one acknowledges.
                    try await harness.execute(
                        "UPDATE bus.deliveries SET lease_token = gen_random_uuid() WHERE subscription = 'relay-lost'"
                    )
                }
            }
            #expect(attempts == [1, 2])
            // Only the acknowledged attempt published.
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.events WHERE type = 'test.relayed'") == 1)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries WHERE subscription = 'sink'") == 1)
        }
    }

    @Test func aHeldPublishTheDatabaseRefusesFailsTheHandlingWhichIsRetried() async throws {
        try await withBus { harness in
            let attempts = try await relayOneEvent(harness, subscription: "relay-refused") { event, transaction in
                // The first attempt's payload is not JSON: the acknowledgement that carries it fails as a whole.
                let payload = event.attempt == 1 ? "not json" : #"{"n":1}"#
                try await transaction.publish(EventEnvelope(type: "test.relayed", payload: payload))
            }
            #expect(attempts == [1, 2])
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.events WHERE type = 'test.relayed'") == 1)
        }
    }

    /// Publishes one event to `subscription`, whose consumer runs `handler`, beside a `sink` subscription to
    /// `test.relayed` that nobody consumes; returns the attempts the handler saw once the event is handled.
    private func relayOneEvent(
        _ harness: BusHarness,
        subscription name: String,
        handler: @escaping @Sendable (ReceivedEvent, BusTransaction) async throws -> Void
    ) async throws -> [Int] {
        let relay = fastSubscription(name)
        try await harness.bus.register(relay)
        try await harness.bus.register(fastSubscription("sink", topics: ["test.relayed"]))
        _ = try await harness.publish([TestEvent(sequence: 1)])
        let attempts = OrderRecorder()
        let relaying = harness.bus.consumer(relay) { event, transaction in
            attempts.append(event.attempt)
            try await handler(event, transaction)
        }
        try await harness.running([relaying]) {
            try await eventually("handled") {
                try await harness.scalar("SELECT count(*)::int FROM bus.handled WHERE subscription = \(name)") == 1
            }
        }
        return attempts.values
    }

    @Test func aBacklogOfOneKeyIsWorkedThroughInOrderWithoutPolling() async throws {
        try await withBus { harness in
            // A poll interval far longer than the test: only acknowledgements that claim the key's next event move on.
            let subscription = fastSubscription("one-key", pollInterval: .seconds(600))
            try await harness.bus.register(subscription)
            _ = try await harness.publish((1...50).map { TestEvent(sequence: $0, key: "k") }, orderingKey: { $0.key })
            let order = OrderRecorder()
            let consumer = harness.bus.consumer(subscription) { event, transaction in
                order.append(try event.decode(TestEvent.self).sequence)
                try await recordEffect(event, by: "one-key", in: transaction)
            }
            try await harness.running([consumer]) {
                try await eventually("all 50 handled", timeout: .seconds(60)) { try await harness.effectCount() == 50 }
            }
            #expect(order.values == Array(1...50))
        }
    }
}

/// The sequence numbers a handler saw, in the order it saw them.
private final class OrderRecorder: Sendable {
    private let seen = Mutex<[Int]>([])
    func append(_ value: Int) { seen.withLock { $0.append(value) } }
    var values: [Int] { seen.withLock { $0 } }
}
