import Foundation
import Metrics
import MetricsTestKit
import PostboxBus
import PostgresNIO
import Testing

@Suite("Retention and metrics", .timeLimit(.minutes(2)))
struct RetentionAndMetricsTests {
    @Test func retentionRemovesOldHistoryButKeepsWhatIsStillNeeded() async throws {
        try await withBus(configuration: .init(instanceName: "test", retention: .zero)) { harness in
            let consumer = harness.recordingConsumer(fastSubscription("kept"))
            try await harness.bus.register(consumer.subscription)
            try await harness.bus.register(fastSubscription("idle", topics: ["other.topic"]))
            _ = try await harness.publish([TestEvent(sequence: 1), TestEvent(sequence: 2)])
            try await harness.running([consumer]) {
                try await eventually("handled") { try await harness.effectCount() == 2 }
            }
            // Still pending for nobody else, so both events can go; a pending event must stay.
            let pending = EventEnvelope(type: "other.topic", payload: "{}")
            try await harness.bus.publish(pending)
            let removed = try await harness.bus.applyRetention()
            #expect(removed == 4, "two handled rows and two events")
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.events", as: Int.self) == 1)
            #expect(try await harness.scalar("SELECT id FROM bus.events", as: UUID.self) == pending.id)
        }
    }

    @Test func consumersReportHandledFailuresAndDeadLetters() async throws {
        let metrics = TestMetrics()
        try await withMetricsFactory(metrics) {
            try await withBus { harness in
                let consumer = harness.bus.consumer(fastSubscription("measured", maxAttempts: 2)) { event, _ in
                    struct Odd: Error {}
                    if try event.decode(TestEvent.self).sequence.isMultiple(of: 2) == false { throw Odd() }
                }
                try await harness.bus.register(consumer.subscription)
                _ = try await harness.publish((1...4).map { TestEvent(sequence: $0) })
                try await harness.running([consumer]) {
                    try await eventually("two handled and two dead-lettered") {
                        metrics.counterTotal(label: "postbox.bus.handled") == 2
                            && metrics.counterTotal(label: "postbox.bus.dead_lettered") == 2
                    }
                }
                #expect(metrics.counterTotal(label: "postbox.bus.failures") == 4)
                let stats = try await harness.bus.stats()
                #expect(stats.subscriptions.first { $0.name == "measured" }?.deadLetters == 2)
            }
        }
    }

    @Test func statsCountEachSubscriptionsQueueAndTheAgeOfItsOldestEvent() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("waiting"))
            try await harness.bus.register(fastSubscription("empty", topics: ["other.topic"]))
            let old = try EventEnvelope(TestEvent(sequence: 1))
            try await harness.bus.publish(old)
            // Make the first event ten minutes old, as if it had waited that long.
            try await harness.execute("UPDATE bus.events SET published_at = now() - interval '10 minutes' WHERE id = \(old.id)")
            _ = try await harness.publish([TestEvent(sequence: 2)])
            try await harness.bus.publish(try EventEnvelope(TestEvent(sequence: 3)), deliverAt: Date().addingTimeInterval(3600))
            let stats = try await harness.bus.stats()
            let waiting = try #require(stats.subscriptions.first { $0.name == "waiting" })
            #expect(waiting.ready == 2 && waiting.scheduled == 1 && waiting.leased == 0 && waiting.depth == 3)
            #expect((590...700).contains(waiting.oldestAgeSeconds), "ten minutes, not the newest event's age")
            let empty = try #require(stats.subscriptions.first { $0.name == "empty" })
            #expect(empty.depth == 0 && empty.oldestAgeSeconds == 0)
        }
    }
}
