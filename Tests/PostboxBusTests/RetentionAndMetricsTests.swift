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
}
