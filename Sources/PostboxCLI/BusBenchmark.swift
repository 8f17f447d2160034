import Foundation
import Logging
import PostboxBus
import PostboxHarness
import PostboxService
import PostgresNIO
import ServiceLifecycle
import Subprocess
import Synchronization
import SystemPackage

/// The workloads of `postbox bench bus`, each run against one database for a fixed time.
///
/// The limit is the same work as plain SQL through the same client library and the same number of connections:
/// an insert, then a claim-and-delete that returns the messages, each its own transaction and a prepared statement
/// (``PlainSQLQueueStatements``), of one row or a batch. The bus workloads publish, claim, handle and acknowledge
/// through ``MessageBus``. A backlog cap keeps producers from running away from consumers, so every figure is a
/// steady state.
struct BusBenchmark {
    let database: DatabaseURL
    let connections: Int
    let duration: Duration
    /// How many times each throughput workload runs. A round measures the limit and the bus back to back, so
    /// both see the same state of a machine whose speed drifts over minutes.
    let rounds: Int
    let batchSize: Int
    let redeliveryRuns: Int
    let workerPath: String
    /// Restarts the server (fast shutdown) and returns once it accepts connections; nil for an external server.
    let restartServer: (@Sendable () async throws -> Void)?
    let logger: Logger
    let progress: @Sendable (String) -> Void

    static let backlogCap = 5_000
    static let payload =
        #"{"orderId":"8b4e8a0e-8f5c-4a43-9d59-0a9b8f3b1c11","customerId":"c-1042","lines":[{"sku":"SKU-001","quantity":2,"priceCents":1999},{"sku":"SKU-002","quantity":1,"priceCents":4999}],"totalCents":8997}"#

    func run() async throws -> BusBenchmarkReport {
        let machine = try await withClient { client in
            try await client.withConnection { try await MachineDescription.read(connection: $0, logger: logger) }
        }
        try await withClient { client in
            try await MessageBus(client: client, logger: logger).migrate()
            try await client.query(
                "CREATE TABLE IF NOT EXISTS public.bench_queue (id bigserial PRIMARY KEY, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
                logger: logger
            )
        }
        var rounds: [BusBenchmarkRound] = []
        for round in 1...self.rounds {
            let of = self.rounds > 1 ? " (round \(round) of \(self.rounds))" : ""
            progress("limit: plain SQL, 1 insert + 1 claim per transaction, \(connections) connections\(of)")
            let limitSingle = try await measurePlainSQL(rowsPerTransaction: 1)
            progress("bus: 1 event per transaction\(of)")
            let busSingle = try await measureBus(eventsPerTransaction: 1)
            progress("limit: plain SQL, \(batchSize) rows per transaction\(of)")
            let limitBatched = try await measurePlainSQL(rowsPerTransaction: batchSize)
            progress("bus: \(batchSize) events per transaction\(of)")
            let busBatched = try await measureBus(eventsPerTransaction: batchSize)
            rounds.append(
                BusBenchmarkRound(
                    limitSingle: limitSingle,
                    busSingle: busSingle,
                    limitBatched: limitBatched,
                    busBatched: busBatched
                )
            )
        }
        progress("recovery: PostgreSQL restart under the 1-event-per-transaction workload")
        let restart = try await measureRestartRecovery()
        var redeliveries: [Double] = []
        for run in 0..<redeliveryRuns {
            progress("redelivery after SIGKILL, run \(run + 1) of \(redeliveryRuns)")
            redeliveries.append(try await measureRedelivery())
        }
        return BusBenchmarkReport(
            machine: machine,
            connections: connections,
            seconds: duration.components.seconds,
            batchSize: batchSize,
            rounds: rounds,
            redeliverySeconds: redeliveries,
            restartRecovery: restart,
            date: Date()
        )
    }

    // MARK: Workloads

    private func measurePlainSQL(rowsPerTransaction rows: Int) async throws -> Throughput {
        let claimed = Tally()
        let insert = PlainSQLQueueStatements.Insert(payloads: Array(repeating: Self.payload, count: rows))
        let claim = PlainSQLQueueStatements.Claim(limit: rows)
        return try await withClient { client in
            try await startClean(client, tables: "public.bench_queue")
            return try await measure(counter: claimed, client: client) {
                await withDiscardingTaskGroup { group in
                    for _ in 0..<connections {
                        group.addTask {
                            while !Task.isCancelled {
                                do {
                                    if claimed.backlog < Self.backlogCap {
                                        for try await _ in try await client.execute(insert, logger: logger) {}
                                        claimed.produced(rows)
                                    }
                                    let taken = try await client.execute(claim, logger: logger)
                                        .reduce(into: 0) { count, _ in count += 1 }
                                    claimed.consumed(taken)
                                } catch {
                                    if !Task.isCancelled {
                                        logger.warning("plain SQL workload: \(DatabaseFailure(error, database: database))")
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private func measureBus(eventsPerTransaction batch: Int) async throws -> Throughput {
        try await runBusWorkload(eventsPerTransaction: batch) { handled, client in
            try await measure(counter: handled, client: client)
        }
    }

    /// Restarts PostgreSQL under the one-event-per-transaction workload and times how long the handled rate takes
    /// to come back to `recoveredShare` of what it was before (over a one-second window). Nil if the server
    /// cannot be restarted from here (an external `--database-url`).
    ///
    /// The rate before is the median of `restartRateWindows` one-second rates after `restartWarmup`. On the
    /// project machine this workload's one-second rates spread over 0.89–1.19 of their median within eleven
    /// seconds, restart or not, so a single three-second rate, as this took before, could land on a fast stretch
    /// and make "recovery" wait for an equally fast second.
    private func measureRestartRecovery() async throws -> RestartRecovery? {
        guard let restartServer else { return nil }
        return try await runBusWorkload(eventsPerTransaction: 1, topicSuffix: "restart") { handled, _ in
            try await Task.sleep(for: Self.restartWarmup)
            var rates: [Double] = []
            var last = (ContinuousClock.now, handled.total)
            for _ in 0..<Self.restartRateWindows {
                try await Task.sleep(for: .seconds(1))
                let now = (ContinuousClock.now, handled.total)
                rates.append(Double(now.1 - last.1) / (now.0 - last.0).seconds)
                last = now
            }
            let rateBefore = rates.sorted()[rates.count / 2]
            let restartedAt = ContinuousClock.now
            try await restartServer()
            let serverBack = ContinuousClock.now - restartedAt
            // Samples of (time, handled) every 100 ms; recovered once the last second's rate is back.
            var samples: [(ContinuousClock.Instant, Int)] = [(ContinuousClock.now, handled.total)]
            let deadline = restartedAt + .seconds(60)
            while ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                let now = (ContinuousClock.now, handled.total)
                samples.append(now)
                guard let windowStart = samples.last(where: { now.0 - $0.0 >= .seconds(1) }) else { continue }
                let rate = Double(now.1 - windowStart.1) / (now.0 - windowStart.0).seconds
                if rate >= Self.recoveredShare * rateBefore {
                    // The window that reached the rate began here; throughput was back by its start at the latest.
                    return RestartRecovery(
                        rateBefore: rateBefore,
                        serverRestartSeconds: serverBack.seconds,
                        recoveredSeconds: (windowStart.0 - restartedAt).seconds,
                        recovered: true
                    )
                }
            }
            return RestartRecovery(
                rateBefore: rateBefore,
                serverRestartSeconds: serverBack.seconds,
                recoveredSeconds: 60,
                recovered: false
            )
        }
    }

    /// The share of the rate before a restart that counts as full throughput again.
    static let recoveredShare = 0.9
    /// How long the restart workload runs before its rate is taken, and over how many one-second windows.
    static let restartWarmup = Duration.seconds(4)
    static let restartRateWindows = 8

    /// Runs publishers and competing consumers of one subscription until `measurement` returns.
    private func runBusWorkload<Measured: Sendable>(
        eventsPerTransaction batch: Int,
        topicSuffix: String = "",
        measurement: @escaping @Sendable (Tally, PostgresClient) async throws -> Measured
    ) async throws -> Measured {
        let handled = Tally()
        let topic = "bench.events.\(batch)\(topicSuffix)"
        // Half the connections claim and handle, half publish: competing consumers of one subscription, each
        // with one claim loop and one handler transaction at a time, as the plain-SQL clients each run one.
        let subscription = Subscription(
            name: "bench-\(batch)\(topicSuffix)",
            topics: [topic],
            concurrency: 1,
            claimBatchSize: batch,
            handlerBatchSize: batch
        )
        return try await withClient { client in
            try await startClean(client, tables: "bus.events, bus.deliveries, bus.handled, bus.dead_letters")
            let bus = MessageBus(client: client, configuration: busConfiguration, logger: logger)
            try await bus.register(subscription)
            let consumers = (0..<max(1, connections / 2)).map { _ in
                bus.batchConsumer(subscription) { events, _ in handled.consumed(events.count) }
            }
            let services = ServiceGroup(
                configuration: .init(
                    services: [.init(service: bus)] + consumers.map { .init(service: $0) },
                    logger: logger
                )
            )
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await services.run() }
                let measured = try await measuring(handled, by: { handled in try await measurement(handled, client) }) {
                    await withDiscardingTaskGroup { publishers in
                        for _ in 0..<max(1, connections / 2) {
                            publishers.addTask {
                                while !Task.isCancelled {
                                    guard handled.backlog < Self.backlogCap else {
                                        // The backlog holds seconds of work: a publisher ahead of the consumers
                                        // rests 10 ms (waking every millisecond cost the consumers CPU).
                                        try? await Task.sleep(for: .milliseconds(10))
                                        continue
                                    }
                                    let events = (0..<batch).map { _ in
                                        EventEnvelope(type: topic, orderingKey: nil, payload: Self.payload)
                                    }
                                    do {
                                        try await bus.publish(events)
                                        handled.produced(batch)
                                    } catch {
                                        if !Task.isCancelled { logger.warning("publisher: \(DatabaseFailure(error, database: database))") }
                                    }
                                }
                            }
                        }
                    }
                }
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
                return measured
            }
        }
    }

    /// Publishes one event, lets a consumer in a child process claim it, SIGKILLs that process, and times how
    /// long a consumer with default settings takes to handle the event.
    private func measureRedelivery() async throws -> Double {
        let subscription = Subscription(name: "bench-redelivery", topics: ["bench.redelivery"])
        return try await withClient { client in
            let bus = MessageBus(client: client, configuration: busConfiguration, logger: logger)
            try await bus.register(subscription)
            let event = EventEnvelope(type: "bench.redelivery", payload: Self.payload)
            try await bus.publish(event)
            let result = try await Subprocess.run(
                .path(FilePath(workerPath)),
                arguments: [
                    "bus-worker", "--database-url", database.text, "--subscription", subscription.name,
                    "--topic", "bench.redelivery", "--mode", "hang",
                ],
                input: .none,
                output: .sequence,
                error: .discarded
            ) { execution in
                for try await line in execution.standardOutput.lines() where line.hasPrefix("claimed \(event.id)") {
                    break
                }
                let killedAt = ContinuousClock.now
                try execution.send(signal: .kill)
                return killedAt
            }
            let killedAt = result.closureResult
            let handledAt = Mutex<ContinuousClock.Instant?>(nil)
            let done = Tally()
            let consumer = bus.consumer(subscription) { received, _ in
                if received.id == event.id {
                    handledAt.withLock { $0 = ContinuousClock.now }
                    done.consumed(1)
                }
            }
            let services = ServiceGroup(
                configuration: .init(services: [.init(service: bus), .init(service: consumer)], logger: logger)
            )
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await services.run() }
                let deadline = ContinuousClock.now + .seconds(60)
                while done.total == 0 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
            }
            guard let handled = handledAt.withLock({ $0 }) else {
                throw ValidationFailure("the killed consumer's event was not handled again within 60 s")
            }
            return (handled - killedAt).seconds
        }
    }

    // MARK: Helpers

    /// Every workload starts from the same state: its tables empty, and a checkpoint just taken, so that no
    /// workload pays for another's full-page writes or bloat (a role that may not checkpoint skips that part).
    private func startClean(_ client: PostgresClient, tables: String) async throws {
        try await client.query("TRUNCATE \(unescaped: tables)", logger: logger)
        do {
            try await client.query("CHECKPOINT", logger: logger)
        } catch {
            progress("CHECKPOINT refused (\(String(reflecting: error))); measuring without it")
        }
    }

    private var busConfiguration: MessageBus.Configuration {
        MessageBus.Configuration(listenerConnection: database.connectionConfiguration)
    }

    /// Runs `workload` until cancelled; returns the counter's rate over `duration` after one second of warm-up.
    private func measure(
        counter: Tally,
        client: PostgresClient,
        workload: @escaping @Sendable () async -> Void
    ) async throws -> Throughput {
        try await measuring(counter, by: { counter in try await measure(counter: counter, client: client) }, workload: workload)
    }

    /// The counter's rate over `duration` after one second of warm-up, and the WAL the server wrote meanwhile.
    private func measure(counter: Tally, client: PostgresClient) async throws -> Throughput {
        try await Task.sleep(for: .seconds(1))
        let walBefore = await walPosition(client)
        let start = (ContinuousClock.now, counter.total)
        try await Task.sleep(for: duration)
        let end = (ContinuousClock.now, counter.total)
        let walAfter = await walPosition(client)
        let messages = end.1 - start.1
        var walPerMessage: Double?
        if let walBefore, let walAfter, messages > 0 { walPerMessage = Double(walAfter - walBefore) / Double(messages) }
        let seconds = (end.0 - start.0).seconds
        return Throughput(rate: Double(messages) / seconds, walBytesPerMessage: walPerMessage, messages: messages, seconds: seconds)
    }

    /// The server's current WAL insert position in bytes; nil if it cannot be read.
    private func walPosition(_ client: PostgresClient) async -> Int64? {
        do {
            for try await position in try await client.query(
                "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint",
                logger: logger
            ).decode(Int64.self) { return position }
        } catch {
            progress("WAL position unreadable (\(String(reflecting: error))); measuring without it")
        }
        return nil
    }

    /// Runs `workload` while `measurement` runs, then cancels it.
    private func measuring<Measured: Sendable>(
        _ counter: Tally,
        by measurement: @escaping @Sendable (Tally) async throws -> Measured,
        workload: @escaping @Sendable () async -> Void
    ) async throws -> Measured {
        try await withThrowingTaskGroup(of: Measured?.self) { group in
            group.addTask {
                await workload()
                return nil
            }
            defer { group.cancelAll() }
            return try await measurement(counter)
        }
    }

    private func withClient<Result: Sendable>(
        _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        var configuration = database.configuration
        configuration.options.maximumConnections = connections + 4
        // Quieted: each workload's first query races the client's `run()`, which PostgresNIO reports as a warning
        // although the lease just waits, and a restart logs every refused reconnection attempt.
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger.quieted())
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}

/// A workload's steady rate, and what it cost the server in WAL.
struct Throughput: Codable, Sendable {
    /// Messages (or events) handled per second.
    var rate: Double
    /// WAL bytes the server wrote per message while it was measured: every row, index entry, full-page image and
    /// commit record the work took. Nil if the server's WAL position could not be read.
    var walBytesPerMessage: Double?
    /// Messages handled in the measured window.
    var messages: Int
    /// The measured window's length.
    var seconds: Double
}

extension Throughput {
    /// Several measurements of one workload as one: all their messages over all their time, and their WAL per
    /// message weighted by messages (nil if any lacks it).
    init(combining parts: [Throughput]) {
        messages = parts.reduce(0) { $0 + $1.messages }
        seconds = parts.reduce(0) { $0 + $1.seconds }
        rate = seconds > 0 ? Double(messages) / seconds : 0
        let wal = parts.compactMap { part in part.walBytesPerMessage.map { $0 * Double(part.messages) } }
        walBytesPerMessage = wal.count == parts.count && messages > 0 ? wal.reduce(0, +) / Double(messages) : nil
    }
}

/// One round of `postbox bench bus`: each throughput workload once, the limit right before the bus it judges.
struct BusBenchmarkRound: Codable, Sendable {
    var limitSingle: Throughput
    var busSingle: Throughput
    var limitBatched: Throughput
    var busBatched: Throughput
}

/// Counts produced and consumed units across tasks.
final class Tally: Sendable {
    private let producedCount = Atomic<Int>(0)
    private let consumedCount = Atomic<Int>(0)

    func produced(_ count: Int) { producedCount.add(count, ordering: .relaxed) }
    func consumed(_ count: Int) { consumedCount.add(count, ordering: .relaxed) }
    var total: Int { consumedCount.load(ordering: .relaxed) }
    var backlog: Int { producedCount.load(ordering: .relaxed) - consumedCount.load(ordering: .relaxed) }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
