import EmbeddedPostgres
import Foundation
import PostgresNIO
import Subprocess
import Synchronization
import SystemPackage
import Testing

@testable import PostboxBus

@Suite("Crash safety", .timeLimit(.minutes(2)))
struct CrashSafetyTests {
    @Test func aClaimCommitsAsynchronouslyAndOnlyItsOwnTransaction() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("async-claim"))
            _ = try await harness.publish([TestEvent(sequence: 1)])
            let claim = DeliveryStatements.Claim(
                subscription: "async-claim",
                limit: 1,
                token: UUID(),
                owner: "a",
                leaseSeconds: 30
            )
            // Run in a transaction of the test's, so that the setting the claim leaves can be read after it, and
            // again on the same connection once that transaction has ended.
            let (claimed, during, after) = try await harness.client.withConnection { connection in
                func mode() async throws -> String {
                    let rows = try await connection.query("SHOW synchronous_commit", logger: testLogger)
                    for try await mode in rows.decode(String.self) { return mode }
                    throw HarnessError("SHOW returned no row")
                }
                try await connection.query("BEGIN", logger: testLogger)
                var claimed: [ClaimedDelivery] = []
                for try await delivery in try await connection.execute(claim, logger: testLogger) {
                    claimed.append(delivery)
                }
                let during = try await mode()
                try await connection.query("COMMIT", logger: testLogger)
                return (claimed, during, try await mode())
            }
            #expect(claimed.count == 1 && claimed[0].event.attempt == 1)
            // The lease and the attempt count need to survive the consumer, not the server (docs/bus.md).
            #expect(during == "off")
            #expect(after == "on")
        }
    }

    @Test func aConsumerKilledMidHandlerHasItsEventHandledAgainWithinTheLease() async throws {
        try await withBus { harness in
            let subscription = fastSubscription("survivor", lease: .seconds(1))
            try await harness.bus.register(subscription)
            let envelope = try await harness.publish([TestEvent(sequence: 1)])[0]
            let killedAt: ContinuousClock.Instant = try await runWorker(harness, subscription: subscription, mode: "hang") { line, execution in
                guard line.hasPrefix("claimed \(envelope.id) attempt 1") else { return nil }
                try execution.send(signal: .kill)
                return ContinuousClock.now
            }
            let consumer = harness.recordingConsumer(subscription)
            try await harness.running([consumer]) {
                try await eventually("the killed consumer's event is handled again", timeout: .seconds(15)) {
                    try await harness.effectCount() == 1
                }
            }
            #expect(ContinuousClock.now - killedAt < .seconds(10))
            #expect(try await harness.scalar("SELECT attempt FROM app.effects", as: Int.self) == 2)
        }
    }

    @Test func anEventThatCrashesItsConsumerEveryTimeEndsInDeadLetters() async throws {
        try await withBus { harness in
            let subscription = fastSubscription("crashy", lease: .milliseconds(500), maxAttempts: 3)
            try await harness.bus.register(subscription)
            let envelope = try await harness.publish([TestEvent(sequence: 1)])[0]
            var crashes = 0
            for _ in 0..<6 {
                if try await harness.bus.deadLetters.inspect(subscription: "crashy", eventId: envelope.id) != nil { break }
                // Each run claims the event and exits mid-handler, or, once attempts are exhausted, dead-letters it.
                let status = try await runWorkerUntilExitOrDeadLetter(harness, subscription: subscription, eventId: envelope.id)
                if status == .exited(70) { crashes += 1 }
            }
            let letter = try #require(try await harness.bus.deadLetters.inspect(subscription: "crashy", eventId: envelope.id))
            #expect(crashes == 3)
            #expect(letter.reason == "gave up after 3 attempts")
            #expect(letter.errors.last?.contains("lease expired") == true)
        }
    }

    @Test func aLateAcknowledgementAfterALeaseTakeoverHasNoEffect() async throws {
        try await withBus { harness in
            let subscription = fastSubscription("takeover")
            try await harness.bus.register(subscription)
            _ = try await harness.publish([TestEvent(sequence: 1)])
            let store = DeliveryStore(client: harness.client, logger: testLogger)
            let first = try #require(
                try await store.claim(subscription: "takeover", limit: 1, lease: .milliseconds(200), owner: "stalled").first
            )
            var second: ClaimedDelivery?
            try await eventually("the lease expires and another consumer takes over") {
                second = try await store.claim(subscription: "takeover", limit: 1, lease: .seconds(30), owner: "new").first
                return second != nil
            }
            let takeover = try #require(second)
            #expect(takeover.tookOverLease)
            #expect(takeover.event.attempt == 2)
            // The stalled consumer wakes up and tries to acknowledge with its old lease: nothing matches.
            let late = try await harness.client.withTransaction(logger: testLogger) { connection in
                try await DeliveryStore.acknowledge(
                    deliveryIds: [first.deliveryId],
                    token: first.leaseToken,
                    owner: "stalled",
                    claimNext: 0,
                    subscription: "takeover",
                    lease: .seconds(30),
                    on: connection,
                    logger: testLogger
                )
            }
            #expect(late.deleted == 0)
            let current = try await harness.client.withTransaction(logger: testLogger) { connection in
                try await DeliveryStore.acknowledge(
                    deliveryIds: [takeover.deliveryId],
                    token: takeover.leaseToken,
                    owner: "new",
                    claimNext: 0,
                    subscription: "takeover",
                    lease: .seconds(30),
                    on: connection,
                    logger: testLogger
                )
            }
            #expect(current.deleted == 1 && current.recorded == 1)
            #expect(try await harness.scalar("SELECT handled_by FROM bus.handled", as: String.self) == "new")
        }
    }

    @Test func aNotificationFromAnotherProcessWakesTheConsumer() async throws {
        try await withBus { harness in
            // A poll interval far longer than the test: only LISTEN/NOTIFY can wake the consumer in time.
            let subscription = fastSubscription("woken", pollInterval: .seconds(600))
            let consumer = harness.recordingConsumer(subscription)
            try await harness.bus.register(subscription)
            try await harness.running([consumer]) {
                try await waitUntilListeningAndIdle(harness, subscription: "woken")
                try await harness.withOtherProcess { other in
                    try await other.publish(try EventEnvelope(TestEvent(sequence: 1)))
                    try await eventually("handled", timeout: .seconds(10)) { try await harness.effectCount() == 1 }
                }
            }
        }
    }

    @Test func aBurstOfCommitsSendsOneNotificationPerIntervalAndTheLastIsNotLost() async throws {
        try await withBus { harness in
            // A poll interval and a lease far longer than the test: a consumer also wakes when the lease it saw on
            // a delivery in flight would expire, and only a notification may wake this one.
            let subscription = fastSubscription("burst", lease: .seconds(600), pollInterval: .seconds(600))
            let consumer = harness.recordingConsumer(subscription)
            try await harness.bus.register(subscription)
            try await harness.running([consumer]) {
                try await waitUntilListeningAndIdle(harness, subscription: "burst")
                let before = harness.bus.listener.notificationsReceived.load(ordering: .relaxed)
                let interval = Duration.seconds(3)
                var burst = Duration.zero
                try await harness.withOtherProcess(notificationInterval: interval) { other in
                    // The first commit is notified at once; once it is handled the consumer is idle.
                    try await other.publish(try EventEnvelope(TestEvent(sequence: 1)))
                    try await eventually("the first handled", timeout: .seconds(10)) { try await harness.effectCount() == 1 }
                    // A burst within the interval waits for its end: its events are handled only if the burst's
                    // notification is sent then, not dropped.
                    let start = ContinuousClock.now
                    // Half through the notifier's loop, half sent on the connection that committed: both wait.
                    for sequence in 2...20 {
                        if sequence.isMultiple(of: 2) {
                            try await other.publish(try EventEnvelope(TestEvent(sequence: sequence)))
                        } else {
                            try await other.withTransaction { try await $0.publish(TestEvent(sequence: sequence)) }
                        }
                    }
                    burst = ContinuousClock.now - start
                    try await eventually("all handled", timeout: .seconds(30)) { try await harness.effectCount() == 20 }
                    // The burst's notification arrives at the end of its interval even when the consumer, on a busy
                    // machine, found the burst first by claiming again on its own: wait for it, while the publishing
                    // process is still there to send it, rather than read at once.
                    try await eventually("the burst's notification", timeout: .seconds(15)) {
                        harness.bus.listener.notificationsReceived.load(ordering: .relaxed) - before >= 2
                    }
                }
                // The first; the burst's first, if handling the first took longer than the interval; one per interval
                // the burst spanned; and the burst's last.
                let received = harness.bus.listener.notificationsReceived.load(ordering: .relaxed) - before
                let allowed = 3 + Int(burst / interval)
                #expect(received <= allowed, "\(received) notifications for 20 commits (burst \(burst))")
            }
        }
    }

    @Test func aListenerWhoseConnectionIsTerminatedReconnectsAndMissesNothing() async throws {
        try await withBus { harness in
            let subscription = fastSubscription("reconnecting", pollInterval: .seconds(600))
            let consumer = harness.recordingConsumer(subscription)
            try await harness.bus.register(subscription)
            try await harness.running([consumer]) {
                try await waitUntilListeningAndIdle(harness, subscription: "reconnecting")
                // Published by a process whose bus sends no notification: only a look at the table finds these.
                try await harness.withOtherProcess(runBus: false) { other in
                    try await other.publish((1...5).map { try EventEnvelope(TestEvent(sequence: $0)) })
                }
                let terminated = try await harness.scalar(
                    """
                    SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int FROM pg_stat_activity
                    WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()
                    """,
                    as: Int.self
                )
                #expect(terminated == 1, "exactly the listener's backend is terminated")
                try await eventually("the listener is connected again") {
                    harness.bus.listener.connectCount.load(ordering: .relaxed) >= 2
                }
                try await eventually("events published while the listener was away are handled", timeout: .seconds(10)) {
                    try await harness.effectCount() == 5
                }
            }
        }
    }

    // MARK: Helpers

    /// Waits until the listener is connected and the queue is empty, so the next wake-up must come from outside.
    private func waitUntilListeningAndIdle(_ harness: BusHarness, subscription: String) async throws {
        try await eventually("the listener is connected") { harness.bus.listener.connectCount.load(ordering: .relaxed) >= 1 }
        try await eventually("the subscription is registered and empty") {
            try await harness.bus.stats().subscriptions.contains { $0.name == subscription && $0.depth == 0 }
        }
    }

    private func workerArguments(_ harness: BusHarness, _ subscription: Subscription, mode: String) -> [String] {
        [
            "bus-worker", "--database-url", harness.server.url(database: harness.database),
            "--subscription", subscription.name, "--topic", TestEvent.eventType, "--mode", mode,
            "--lease-milliseconds",
            "\(Int(subscription.lease.components.seconds * 1000) + Int(subscription.lease.components.attoseconds / 1_000_000_000_000_000))",
            "--max-attempts", "\(subscription.maxAttempts)",
        ]
    }

    /// Runs `postbox bus-worker` and feeds its output lines to `onLine` until it returns a value.
    private func runWorker<Value: Sendable>(
        _ harness: BusHarness,
        subscription: Subscription,
        mode: String,
        onLine: @escaping (String, Execution<NoInput, SequenceOutput, DiscardedOutput>) throws -> Value?
    ) async throws -> Value {
        let result = try await Subprocess.run(
            .path(FilePath(try postboxExecutable())),
            arguments: Arguments(workerArguments(harness, subscription, mode: mode)),
            input: .none,
            output: .sequence,
            error: .discarded
        ) { execution -> Value? in
            for try await line in execution.standardOutput.strings() {
                if let value = try onLine(line, execution) { return value }
            }
            return nil
        }
        return try #require(result.closureResult, "the worker exited before producing the expected line")
    }

    private func runWorkerUntilExitOrDeadLetter(
        _ harness: BusHarness,
        subscription: Subscription,
        eventId: UUID
    ) async throws -> TerminationStatus {
        try await Subprocess.run(
            .path(FilePath(try postboxExecutable())),
            arguments: Arguments(workerArguments(harness, subscription, mode: "crash")),
            input: .none,
            output: .sequence,
            error: .discarded
        ) { execution in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { for try await _ in execution.standardOutput.strings() {} }
                group.addTask {
                    try await eventually("the worker crashes or dead-letters the event", timeout: .seconds(20)) {
                        try await harness.bus.deadLetters.inspect(subscription: subscription.name, eventId: eventId) != nil
                    }
                    try? execution.send(signal: .kill)
                }
                try await group.next()
                group.cancelAll()
            }
        }.terminationStatus
    }
}
