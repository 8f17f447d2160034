import Foundation
import PostgresNIO
import Synchronization
import Testing

@testable import PostboxBus

/// A handler's own statement acknowledging its event (`BusTransaction.acknowledgeInStatement`).
@Suite("Acknowledging in the handler's statement", .timeLimit(.minutes(2)))
struct StatementAcknowledgementTests {
    private let lease = Duration.seconds(30)

    /// Records the effect and acknowledges the event in one statement; whether the handler's transaction had begun.
    private static func recordAndAcknowledge(_ event: ReceivedEvent, by consumer: String, in transaction: BusTransaction) async throws -> Bool {
        try await transaction.acknowledgeInStatement { connection, acknowledgement in
            let rows = try await connection.query(
                """
                WITH e AS (
                    INSERT INTO app.effects (event_id, consumer, attempt, sequence_key)
                    VALUES (\(event.id), \(consumer), \(event.attempt), \(try event.decode(TestEvent.self).key)) RETURNING 1)
                SELECT (SELECT count(*) FROM e)::int, \(acknowledgement)
                """,
                logger: transaction.logger
            )
            for try await (inserted, result) in rows.decode((Int, String).self) {
                #expect(inserted == 1)
                try acknowledgement.recordResult(result)
            }
            return transaction.hasBegun
        }
    }

    @Test func eachEventIsHandledOnceWithItsEffectAndAcknowledgementInOneStatement() async throws {
        try await withBus { harness in
            let begun = Atomic<Int>(0)
            // One handler at a time, claiming one: every later event is claimed by the acknowledgement before it.
            let subscription = fastSubscription("single", concurrency: 1, claimBatchSize: 1)
            let consumer = harness.bus.consumer(subscription) { event, transaction in
                if try await Self.recordAndAcknowledge(event, by: "single", in: transaction) { begun.add(1, ordering: .relaxed) }
            }
            try await harness.bus.register(subscription)
            let published = try await harness.publish((1...20).map { TestEvent(sequence: $0, key: "k\($0)") })
            try await harness.running([consumer]) {
                try await eventually("all 20 handled", timeout: .seconds(30)) { try await harness.effectCount() == 20 }
            }
            #expect(begun.load(ordering: .relaxed) == 0, "the statement ran outside a transaction")
            #expect(
                try await harness.scalar("SELECT count(DISTINCT event_id)::int FROM app.effects WHERE attempt = 1", as: Int.self) == 20
            )
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.handled", as: Int.self) == 20)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 0)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.dead_letters", as: Int.self) == 0)
            // The acknowledgement's claims carried the events whole.
            let keys = try await harness.client.query("SELECT sequence_key FROM app.effects ORDER BY n", logger: testLogger)
            var seen: [String] = []
            for try await key in keys.decode(String.self) { seen.append(key) }
            let expected = try published.map { "k\(try $0.decode(TestEvent.self).sequence)" }
            #expect(seen == expected)
        }
    }

    @Test func theAcknowledgementClaimsTheNextDeliveryAndReturnsItWhole() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("chained"))
            let published = try await harness.publish(
                [TestEvent(sequence: 1, key: "a"), TestEvent(sequence: 2, key: "b")],
                orderingKey: { _ in "same" }
            )
            let store = DeliveryStore(client: harness.client, logger: testLogger)
            let first = try #require(try await store.claim(subscription: "chained", limit: 1, lease: lease, owner: "a").first)
            let next = try await harness.client.withConnection { connection in
                let handling = self.transaction(for: first, on: connection, claimNext: 1)
                _ = try await Self.recordAndAcknowledge(first.event, by: "chained", in: handling)
                return try #require(handling.acknowledgedInStatement?.claimedNext)
            }
            // The second event of the same key, claimed by the statement that acknowledged the first, committed.
            let claimed = try #require(next.first)
            #expect(next.count == 1)
            let envelope = claimed.event.envelope
            #expect(envelope.id == published[1].id && envelope.type == published[1].type && envelope.orderingKey == "same")
            #expect(try envelope.decode(TestEvent.self) == TestEvent(sequence: 2, key: "b"))
            #expect(abs(envelope.occurredAt.timeIntervalSince(published[1].occurredAt)) < 0.000_002)
            #expect(claimed.event.attempt == 1 && !claimed.tookOverLease && !claimed.alreadyHandled)
            #expect(
                try await harness.scalar("SELECT lease_token FROM bus.deliveries WHERE id = \(claimed.deliveryId)", as: UUID.self)
                    == claimed.leaseToken
            )
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.handled", as: Int.self) == 1)
        }
    }

    @Test func aBatchIsAcknowledgedInOneStatementThatClaimsTheNextBatch() async throws {
        try await withBus { harness in
            let subscription = fastSubscription("batch", concurrency: 1, claimBatchSize: 4, handlerBatchSize: 4)
            let batchSizes = Mutex<[Int]>([])
            let consumer = harness.bus.batchConsumer(subscription) { events, transaction in
                batchSizes.withLock { $0.append(events.count) }
                try await transaction.acknowledgeInStatement { connection, acknowledgement in
                    let rows = try await connection.query(
                        """
                        WITH e AS (
                            INSERT INTO app.effects (event_id, consumer, attempt)
                            SELECT unnest(\(events.map(\.id))::uuid[]), 'batch', 1 RETURNING 1)
                        SELECT (SELECT count(*) FROM e)::int, \(acknowledgement)
                        """,
                        logger: transaction.logger
                    )
                    for try await (_, result) in rows.decode((Int, String).self) { try acknowledgement.recordResult(result) }
                }
            }
            try await harness.bus.register(subscription)
            _ = try await harness.publish((1...12).map { TestEvent(sequence: $0) })
            try await harness.running([consumer]) {
                try await eventually("all 12 handled", timeout: .seconds(30)) { try await harness.effectCount() == 12 }
            }
            #expect(try await harness.scalar("SELECT count(DISTINCT event_id)::int FROM app.effects", as: Int.self) == 12)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.handled", as: Int.self) == 12)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 0)
            #expect(batchSizes.withLock { $0 } == [4, 4, 4])
        }
    }

    @Test func aHandlerThatFindsNothingToWriteAcknowledgesInAStatementOfItsOwn() async throws {
        try await withBus { harness in
            let subscription = fastSubscription("reader", concurrency: 1, claimBatchSize: 1)
            let read = Atomic<Int>(0)
            let consumer = harness.bus.consumer(subscription) { event, transaction in
                try await transaction.acknowledgeInStatement { connection, acknowledgement in
                    // A read on its own first, as payments' charge does, then nothing to write.
                    let rows = try await connection.query("SELECT count(*)::int FROM app.effects", logger: transaction.logger)
                    for try await _ in rows.decode(Int.self) { read.add(1, ordering: .relaxed) }
                    try await acknowledgement.acknowledge(on: connection, logger: transaction.logger)
                }
            }
            try await harness.bus.register(subscription)
            _ = try await harness.publish((1...5).map { TestEvent(sequence: $0) })
            try await harness.running([consumer]) {
                try await eventually("all 5 recorded as handled", timeout: .seconds(30)) {
                    try await harness.scalar("SELECT count(*)::int FROM bus.handled", as: Int.self) == 5
                }
            }
            #expect(read.load(ordering: .relaxed) == 5)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 0)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.dead_letters", as: Int.self) == 0)
        }
    }

    @Test func aLostLeaseOrADuplicateRaisesAndRollsTheHandlersWriteBack() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("guarded"))
            _ = try await harness.publish([TestEvent(sequence: 1, key: "lost"), TestEvent(sequence: 2, key: "duplicate")])
            let store = DeliveryStore(client: harness.client, logger: testLogger)
            let claimed = try await store.claim(subscription: "guarded", limit: 2, lease: lease, owner: "a")
            try #require(claimed.count == 2)
            // Another consumer took the first lease over; the subscription handled the second event already.
            try await harness.execute("UPDATE bus.deliveries SET lease_token = \(UUID()) WHERE id = \(claimed[0].deliveryId)")
            try await harness.execute(
                "INSERT INTO bus.handled (subscription, event_id, attempts) VALUES ('guarded', \(claimed[1].event.id), 1)"
            )
            for (delivery, expected) in zip(claimed, [HandlingOutcome.leaseLost, .duplicate]) {
                let error = try await harness.client.withConnection { connection in
                    let handling = self.transaction(for: delivery, on: connection)
                    do {
                        _ = try await Self.recordAndAcknowledge(delivery.event, by: "guarded", in: handling)
                        return nil as (any Error)?
                    } catch {
                        return error
                    }
                }
                let raised = try #require(error as? PSQLError)
                #expect(HandlingOutcome(raisedBy: raised) == expected)
                #expect(raised.serverInfo?[.hint]?.contains("this statement rolled back") == true)
            }
            #expect(try await harness.effectCount() == 0, "both writes rolled back with their acknowledgements")
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 2)
        }
    }

    @Test func misusesFailWithAClearErrorAndAcknowledgeNothing() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("misused"))
            _ = try await harness.publish([TestEvent(sequence: 1), TestEvent(sequence: 2)])
            let store = DeliveryStore(client: harness.client, logger: testLogger)
            let claimed = try await store.claim(subscription: "misused", limit: 2, lease: lease, owner: "a")
            try #require(claimed.count == 2)

            // Outside a consumer there is no event to acknowledge.
            await #expect(throws: StatementAcknowledgementError.self) {
                try await harness.bus.withTransaction { transaction in
                    try await transaction.acknowledgeInStatement { _, _ in }
                }
            }
            try await harness.client.withConnection { connection in
                // A statement that never returns the call's result: the attempt fails, and nothing was acknowledged.
                let forgetful = transaction(for: claimed[0], on: connection)
                do {
                    _ = try await forgetful.acknowledgeInStatement { connection, _ in
                        try await connection.query("SELECT 1", logger: testLogger)
                    }
                    Issue.record("a statement without the acknowledgement's result was accepted")
                } catch let error as StatementAcknowledgementError {
                    #expect("\(error)".contains("did not hand back the acknowledgement's result"))
                }
                // A statement that acknowledged on its own has committed: publishing after it would not be atomic.
                let committed = transaction(for: claimed[1], on: connection)
                _ = try await Self.recordAndAcknowledge(claimed[1].event, by: "misused", in: committed)
                do {
                    try await committed.publish(TestEvent(sequence: 3))
                    Issue.record("a publish after a committed acknowledgement was accepted")
                } catch let error as StatementAcknowledgementError {
                    #expect("\(error)".contains("committed on its own"))
                }
                await #expect(throws: StatementAcknowledgementError.self) { _ = try await committed.connection }
            }
            #expect(
                try await harness.scalar("SELECT string_agg(id::text, ',') FROM bus.deliveries", as: String.self)
                    == "\(claimed[0].deliveryId)"
            )
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.events", as: Int.self) == 2)
        }
    }

    @Test func publishesBeforeTheStatementCommitWithItInOneTransaction() async throws {
        try await withBus { harness in
            let follows = "test.followed"
            let subscription = fastSubscription("relay", concurrency: 1, claimBatchSize: 1)
            let begun = Atomic<Int>(0)
            let consumer = harness.bus.consumer(subscription) { event, transaction in
                try await transaction.publish(
                    EventEnvelope(type: follows, causationId: event.id, payload: #"{"from":"\#(event.id)"}"#)
                )
                if try await Self.recordAndAcknowledge(event, by: "relay", in: transaction) { begun.add(1, ordering: .relaxed) }
            }
            try await harness.bus.register(subscription)
            try await harness.bus.register(fastSubscription("follower", topics: [follows]))
            let published = try await harness.publish((1...3).map { TestEvent(sequence: $0) })
            try await harness.running([consumer]) {
                try await eventually("all 3 handled", timeout: .seconds(30)) { try await harness.effectCount() == 3 }
            }
            #expect(begun.load(ordering: .relaxed) == 3, "the held publishes began a transaction")
            #expect(
                try await harness.scalar(
                    """
                    SELECT count(*)::int FROM bus.events e JOIN bus.deliveries d ON d.event_id = e.id AND d.subscription = 'follower'
                    WHERE e.type = \(follows) AND e.causation_id = ANY(\(published.map(\.id))::uuid[])
                    """,
                    as: Int.self
                ) == 3
            )
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries WHERE subscription = 'relay'", as: Int.self) == 0)
        }
    }

    /// The transaction a consumer hands its handler for `delivery`.
    private func transaction(for delivery: ClaimedDelivery, on connection: PostgresConnection, claimNext: Int = 0) -> BusTransaction {
        BusTransaction(
            connection: connection,
            logger: testLogger,
            begun: false,
            defersPublishes: true,
            acknowledgement: DeliveryStatements.AcknowledgeParameters(
                deliveryIds: [delivery.deliveryId],
                token: delivery.leaseToken,
                owner: "a",
                subscription: delivery.event.subscription,
                limit: claimNext,
                nextToken: UUID(),
                leaseSeconds: lease.seconds
            )
        )
    }
}
