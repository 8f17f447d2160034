import ArgumentParser
import EmbeddedPostgres
import Foundation
import Logging
import PostboxService

/// `postbox bench bus`: the bus's throughput and crash redelivery, against plain SQL on the same server.
struct BusBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus",
        abstract: "Bus throughput (one event per transaction and batched) and redelivery after SIGKILL."
    )

    @Option(help: "Connections used by each workload (the limit and the bus get the same number).")
    var connections: Int = 16
    @Option(help: "Seconds each throughput workload is measured in each round (after one second of warm-up).")
    var seconds: Int = 10
    @Option(
        help: """
            Rounds of the throughput workloads; each measures the limit and then the bus, so that a machine's \
            drift falls on both. Figures combine all rounds.
            """
    )
    var rounds: Int = 3
    @Option(help: "Events per transaction in the batched workloads.")
    var batchSize: Int = 100
    @Option(help: "Times the consumer is killed to measure redelivery.")
    var redeliveryRuns: Int = 3
    @Option(help: "Use this PostgreSQL (a database the bench may fill) instead of an embedded one.")
    var databaseURL: String?
    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        guard (2...200).contains(connections) else { throw ValidationError("--connections must be between 2 and 200") }
        guard (1...600).contains(seconds) else { throw ValidationError("--seconds must be between 1 and 600") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 20") }
        guard (2...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be between 2 and 10000") }
        guard (0...20).contains(redeliveryRuns) else { throw ValidationError("--redelivery-runs must be between 0 and 20") }
        if let databaseURL { _ = try DatabaseURL(databaseURL) }
    }

    func run() async throws {
        let logger = Logger(label: "postbox.bench")
        let progress: @Sendable (String) -> Void = { line in
            FileHandle.standardError.write(Data("… \(line)\n".utf8))
        }
        let server: EmbeddedPostgres?
        Bench.settleDisk(progress: progress)
        let target: DatabaseURL
        if let databaseURL {
            server = nil
            target = try DatabaseURL(databaseURL)
        } else {
            progress("starting embedded PostgreSQL (default durability, autovacuum_naptime = 1s)")
            let started = try await EmbeddedPostgres.start(.init(durability: .default, settings: EmbeddedPostgres.queueSettings), logger: logger)
            try await started.createDatabase("bench")
            server = started
            target = try DatabaseURL(started.url(database: "bench"))
        }
        do {
            let benchmark = BusBenchmark(
                database: target,
                connections: connections,
                duration: .seconds(seconds),
                rounds: rounds,
                batchSize: batchSize,
                redeliveryRuns: redeliveryRuns,
                workerPath: CommandLine.arguments[0],
                restartServer: restart(server),
                logger: logger,
                progress: progress
            )
            let report = try await benchmark.run()
            print(json ? try report.json() : report.table())
        } catch {
            try? await server?.stop()
            throw error
        }
        try await server?.stop()
    }

    /// Restarts the embedded server, if there is one.
    private func restart(_ server: EmbeddedPostgres?) -> (@Sendable () async throws -> Void)? {
        guard let server else { return nil }
        return { try await server.restart(.fast) }
    }
}
