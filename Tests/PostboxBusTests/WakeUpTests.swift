import Foundation
@testable import PostboxBus
import PostgresNIO
import Synchronization
import Testing

/// How a publish wakes several consumers of one subscription in one process.
@Suite("Wake-ups", .timeLimit(.minutes(2)))
struct WakeUpTests {
    /// Eight claim loops, one delivery at a time each, polling too rarely to matter within the test.
    private static func idleConsumers(_ harness: BusHarness, name: String, handler: @escaping @Sendable (ReceivedEvent) async throws -> Void) -> [Consumer] {
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
