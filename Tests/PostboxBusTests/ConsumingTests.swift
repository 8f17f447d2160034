import Foundation
import PostboxBus
import PostgresNIO
import Synchronization
import Testing

@Suite("Consuming", .timeLimit(.minutes(2)))
struct ConsumingTests {
    @Test func competingConsumersInSeparateConnectionsHandleEveryEventExactlyOnce() async throws {
        try await withBus { harness in
            let subscription = fastSubscription("workers", concurrency: 3, claimBatchSize: 5)
            try await harness.bus.register(subscription)
            _ = try await harness.publish((1...300).map { TestEvent(sequence: $0) })
            // Three consumers, each with its own client (its own connections), as three processes would have.
            try await harness.withOtherProcess { otherA in
                try await harness.withOtherProcess { otherB in
                    let consumers = [("a", harness.bus), ("b", otherA), ("c", otherB)].map { name, bus in
                        bus.consumer(subscription) { event, transaction in
                            try await recordEffect(event, by: name, in: transaction)
                        }
                    }
                    try await harness.running(consumers) {
                        try await eventually("300 events handled") { try await harness.effectCount() >= 300 }
                    }
                }
            }
            let effects = try await harness.effectCount()
            // On failure, say which events had more than one effect, by whom and at which attempt.
            var repeated: [String] = []
            for try await (id, consumer, attempt) in try await harness.client.query(
                """
                SELECT event_id::text, consumer, attempt FROM app.effects
                WHERE event_id IN (SELECT event_id FROM app.effects GROUP BY 1 HAVING count(*) > 1) ORDER BY 1, 3
                """,
                logger: testLogger
            ).decode((String, String, Int).self) { repeated.append("\(id) by \(consumer) at attempt \(attempt)") }
            #expect(effects == 300, "repeated effects: \(repeated.joined(separator: "; "))")
            #expect(try await harness.scalar("SELECT count(DISTINCT event_id)::int FROM app.effects", as: Int.self) == 300)
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 0)
        }
    }

    @Test func aDuplicateDeliveryOfAHandledEventHasNoSecondEffect() async throws {
        try await withBus { harness in
            let consumer = harness.recordingConsumer(fastSubscription("once"))
            try await harness.bus.register(consumer.subscription)
            let envelopes = try await harness.publish([TestEvent(sequence: 1)])
            try await harness.running([consumer]) {
                try await eventually("first delivery handled") { try await harness.effectCount() == 1 }
                // The same event delivered again, as a redelivery or a replayed copy would arrive.
                try await harness.execute(
                    "INSERT INTO bus.deliveries (subscription, event_id, visible_at) VALUES ('once', \(envelopes[0].id), now())"
                )
                try await eventually("the duplicate delivery is consumed") {
                    try await harness.scalar("SELECT count(*)::int FROM bus.deliveries", as: Int.self) == 0
                }
            }
            #expect(try await harness.effectCount() == 1)
        }
    }

    @Test func aFailingHandlerIsRetriedWithBackoffUntilItSucceeds() async throws {
        try await withBus { harness in
            let failuresLeft = Mutex(2)
            let consumer = harness.bus.consumer(fastSubscription("flaky")) { event, transaction in
                try await recordEffect(event, by: "flaky", in: transaction)
                struct Flaky: Error {}
                if failuresLeft.withLock({ left in
                    defer { left -= 1 }
                    return left > 0
                }) {
                    throw Flaky()
                }
            }
            try await harness.bus.register(consumer.subscription)
            _ = try await harness.publish([TestEvent(sequence: 1)])
            try await harness.running([consumer]) {
                try await eventually("handled") { try await harness.effectCount() == 1 }
            }
            // The two failed attempts rolled their effects back; the third committed.
            #expect(try await harness.scalar("SELECT attempt FROM app.effects", as: Int.self) == 3)
            #expect(try await harness.scalar("SELECT attempts FROM bus.handled", as: Int.self) == 3)
        }
    }

    @Test func exhaustedRetriesEndInDeadLettersWithEveryErrorAndCanBeReplayed() async throws {
        try await withBus { harness in
            let fixed = Atomic<Bool>(false)
            let consumer = harness.bus.consumer(fastSubscription("fragile", maxAttempts: 3)) { event, transaction in
                struct Broken: Error, CustomStringConvertible { var description: String { "downstream is broken" } }
                guard fixed.load(ordering: .relaxed) else { throw Broken() }
                try await recordEffect(event, by: "fragile", in: transaction)
            }
            try await harness.bus.register(consumer.subscription)
            let envelopes = try await harness.publish([TestEvent(sequence: 1), TestEvent(sequence: 2)])
            try await harness.running([consumer]) {
                try await eventually("both dead-lettered") {
                    try await harness.bus.deadLetters.list().count == 2
                }
                let letter = try #require(try await harness.bus.deadLetters.inspect(subscription: "fragile", eventId: envelopes[0].id))
                #expect(letter.attempts == 3)
                #expect(letter.reason == "gave up after 3 attempts")
                #expect(letter.errors.count == 3)
                #expect(letter.errors.allSatisfy { $0.contains("downstream is broken") })
                #expect(letter.envelope.id == envelopes[0].id)
                #expect(try letter.envelope.decode(TestEvent.self) == TestEvent(sequence: 1))
                #expect(try await harness.bus.stats().totalDeadLetters == 2)

                fixed.store(true, ordering: .relaxed)
                #expect(try await harness.bus.deadLetters.replay(subscription: "fragile", eventIds: [envelopes[0].id]) == 1)
                try await eventually("the replayed event is handled") { try await harness.effectCount() == 1 }
                #expect(try await harness.bus.deadLetters.purge(subscription: "fragile") == 1)
            }
            #expect(try await harness.bus.deadLetters.list().isEmpty)
        }
    }

    /// PostgresNIO's errors describe themselves as "Generic description to prevent accidental leakage of sensitive
    /// data"; a dead letter must say what the server said.
    @Test func aHandlerThatFailsInTheDatabaseIsDeadLetteredWithTheServersReason() async throws {
        try await withBus { harness in
            // The error of a statement that fails while it runs reaches only whoever reads its rows: "reader"
            // reads them, "skipper" does not, and its acknowledgement then finds the transaction aborted.
            let consumers = ["reader", "skipper"].map { name in
                harness.bus.consumer(fastSubscription(name, maxAttempts: 2)) { _, transaction in
                    let rows = try await transaction.connection.query(
                        "SELECT 1 / (SELECT count(*)::int FROM app.effects)",
                        logger: transaction.logger
                    )
                    if name == "reader" { for try await _ in rows {} }
                }
            }
            for consumer in consumers { try await harness.bus.register(consumer.subscription) }
            let envelopes = try await harness.publish([TestEvent(sequence: 1)])
            try await harness.running(consumers) {
                try await eventually("dead-lettered twice") { try await harness.bus.deadLetters.list().count == 2 }
            }
            let read = try #require(try await harness.bus.deadLetters.inspect(subscription: "reader", eventId: envelopes[0].id))
            #expect(read.reason == "gave up after 2 attempts")
            #expect(read.errors == ["attempt 1: division by zero (SQLSTATE 22012)", "attempt 2: division by zero (SQLSTATE 22012)"])
            let skipped = try #require(try await harness.bus.deadLetters.inspect(subscription: "skipper", eventId: envelopes[0].id))
            #expect(skipped.errors.count == 2)
            #expect(skipped.errors.allSatisfy { $0.contains("did not read its error") && $0.contains("25P02") })
        }
    }

    @Test func anUndecodableEventIsDeadLetteredWithItsReasonAndOthersAreUnaffected() async throws {
        try await withBus { harness in
            let consumer = harness.bus.consumer(fastSubscription("strict")) { event, transaction in
                _ = try event.decode(TestEvent.self)
                try await recordEffect(event, by: "strict", in: transaction)
            }
            try await harness.bus.register(consumer.subscription)
            let poison = EventEnvelope(type: TestEvent.eventType, payload: #"{"sequence":"not a number"}"#)
            let future = EventEnvelope(type: TestEvent.eventType, version: 2, payload: #"{"sequence":1}"#)
            let newerButCompatible = EventEnvelope(type: TestEvent.eventType, payload: #"{"sequence":3,"key":"k","extra":true}"#)
            try await harness.bus.publish([poison, future, newerButCompatible])
            _ = try await harness.publish([TestEvent(sequence: 4)])
            try await harness.running([consumer]) {
                try await eventually("two handled, two dead-lettered") {
                    let handled = try await harness.effectCount()
                    let dead = try await harness.bus.deadLetters.list().count
                    return handled == 2 && dead == 2
                }
            }
            let poisonLetter = try #require(try await harness.bus.deadLetters.inspect(subscription: "strict", eventId: poison.id))
            #expect(poisonLetter.attempts == 1, "decode failures are not retried")
            #expect(poisonLetter.reason.contains("does not decode"))
            let futureLetter = try #require(try await harness.bus.deadLetters.inspect(subscription: "strict", eventId: future.id))
            #expect(futureLetter.reason.contains("version 2 is not supported"))
        }
    }

    @Test func eventsWithTheSameKeyAreHandledInPublishOrderEvenUnderRetries() async throws {
        try await withBus { harness in
            let failed = Mutex<Set<Int>>([])
            let consumer = harness.bus.consumer(fastSubscription("ordered", concurrency: 6, claimBatchSize: 6)) { event, transaction in
                let body = try event.decode(TestEvent.self)
                // Every third event fails on its first attempt.
                if body.sequence % 3 == 0, failed.withLock({ $0.insert(body.sequence).inserted }) {
                    struct FirstTry: Error {}
                    throw FirstTry()
                }
                try await recordEffect(event, by: "\(body.sequence)", in: transaction)
            }
            try await harness.bus.register(consumer.subscription)
            let events = (0..<60).map { TestEvent(sequence: $0, key: "key-\($0 % 3)") }
            _ = try await harness.publish(events, orderingKey: { $0.key })
            try await harness.running([consumer]) {
                try await eventually("60 handled") { try await harness.effectCount() == 60 }
            }
            let rows = try await harness.client.query(
                "SELECT sequence_key, consumer FROM app.effects ORDER BY n",
                logger: testLogger
            )
            var lastPerKey: [String: Int] = [:]
            for try await (key, sequence) in rows.decode((String, String).self) {
                let sequence = try #require(Int(sequence))
                #expect((lastPerKey[key] ?? -1) < sequence, "key \(key): \(sequence) after \(lastPerKey[key] ?? -1)")
                lastPerKey[key] = sequence
            }
            #expect(lastPerKey.count == 3)
        }
    }

    @Test func aFailingKeyBlocksOnlyItselfAndIsVisible() async throws {
        try await withBus { harness in
            let consumer = harness.bus.consumer(fastSubscription("keys", maxAttempts: 1000)) { event, transaction in
                let body = try event.decode(TestEvent.self)
                struct Stuck: Error {}
                if body.key == "stuck" && body.sequence == 0 { throw Stuck() }
                try await recordEffect(event, by: "keys", in: transaction)
            }
            try await harness.bus.register(consumer.subscription)
            let events = (0..<3).map { TestEvent(sequence: $0, key: "stuck") } + (0..<3).map { TestEvent(sequence: $0, key: "free") }
            _ = try await harness.publish(events, orderingKey: { $0.key })
            try await harness.running([consumer]) {
                try await eventually("the free key is handled and the stuck key is reported blocked") {
                    let stats = try await harness.bus.stats()
                    return try await harness.effectCount() == 3 && stats.subscriptions.first?.blockedKeys == 1
                }
            }
            #expect(try await harness.scalar("SELECT count(*)::int FROM app.effects WHERE sequence_key = 'stuck'", as: Int.self) == 0)
        }
    }

    @Test func aBatchConsumerHandlesManyEventsPerTransactionAndIsolatesABadOne() async throws {
        try await withBus { harness in
            let transactions = Atomic<Int>(0)
            let subscription = fastSubscription("batches", concurrency: 1, claimBatchSize: 50, handlerBatchSize: 50, maxAttempts: 1)
            let consumer = harness.bus.batchConsumer(subscription) { events, transaction in
                transactions.add(1, ordering: .relaxed)
                for event in events {
                    let body = try event.decode(TestEvent.self)
                    try await recordEffect(event, by: "batch", in: transaction)
                    struct Bad: Error {}
                    if body.sequence == 7 { throw Bad() }
                }
            }
            try await harness.bus.register(subscription)
            _ = try await harness.publish((0..<50).map { TestEvent(sequence: $0) })
            try await harness.running([consumer]) {
                try await eventually("49 handled and one dead-lettered") {
                    let handled = try await harness.effectCount()
                    let dead = try await harness.bus.deadLetters.list().count
                    return handled == 49 && dead == 1
                }
            }
            // One batch transaction that failed, then one transaction per event.
            #expect(transactions.load(ordering: .relaxed) == 51)
        }
    }
}
