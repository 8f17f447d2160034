import Foundation
import Subprocess
import Testing

/// `postbox bench` through the built command. A short system run prints its figures and where the latency came
/// from, and leaves its warm-up out of both; a short bus run combines its rounds into each figure. They check what
/// the command reports, never how fast anything was.
@Suite("postbox bench", .timeLimit(.minutes(3)))
struct BenchCommandTests {
    struct Output: Decodable {
        struct Figure: Decodable {
            var name: String
            var value: String
        }
        struct Breakdown: Decodable {
            struct Wait: Decodable {
                var subscription: String
                var eventType: String
                var events: Int
                var p50: Double
                var p99: Double
                var max: Double
            }
            struct SlowSecond: Decodable {
                var second: Int
                var orders: Int
            }
            struct Maintenance: Decodable {
                var kind: String
                var table: String?
                var second: Int
            }
            var waits: [Wait]
            var slowOrders: Int
            var slowSeconds: Int
            var seconds: Int
            var slowOrdersBySecond: [SlowSecond]
            var maintenance: [Maintenance]
        }
        struct Machine: Decodable {
            var cores: Int
            var processor: String?
            var singleCoreMegaStepsPerSecond: Double
            var postgres: String
        }
        var machine: Machine
        var figures: [Figure]
        var breakdown: Breakdown
    }

    @Test func aShortSystemRunReportsEveryOrderAndEachSubscriptionsWaits() async throws {
        let result = try await Subprocess.run(
            .path(builtProduct("postbox")),
            arguments: ["bench", "system", "--no-build", "--rate", "50", "--duration", "2", "--warmup", "2", "--search-seconds", "0", "--json"],
            output: .string(limit: 1 << 20),
            error: .string(limit: 1 << 22)
        )
        let stdout = result.standardOutput
        try #require(result.terminationStatus.isSuccess, "bench failed: \(result.standardError)")
        let output = try JSONDecoder().decode(Output.self, from: Data(stdout.utf8))

        let confirmed = try #require(output.figures.first { $0.name == "flow @50/s: confirmed / placed" })
        #expect(confirmed.value == "100/100")
        #expect(output.figures.contains { $0.name == "PostgreSQL + four services ready" })
        // The machine as measured in the run: a yardstick that ran, and the processor's name where Linux has one.
        #expect(output.machine.cores == ProcessInfo.processInfo.activeProcessorCount)
        #expect(output.machine.singleCoreMegaStepsPerSecond > 0)
        #expect(!output.machine.postgres.isEmpty)
        if let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8), cpuinfo.contains("model name") {
            #expect(output.machine.processor?.isEmpty == false)
        }

        // Every measured order's events, each handled once by each subscriber, and none of the warm-up's: at 50/s
        // the last warm-up orders' events are still published after the first measured checkout.
        let waits = Dictionary(uniqueKeysWithValues: output.breakdown.waits.map { ("\($0.subscription) ← \($0.eventType)", $0) })
        #expect(
            Set(waits.keys) == [
                "inventory ← order.placed", "payments ← stock.reserved",
                "inventory ← payment.captured", "orders ← payment.captured",
            ]
        )
        for (key, wait) in waits {
            #expect(wait.events == 100, "\(key)")
            #expect(wait.p50 <= wait.p99 && wait.p99 <= wait.max, "\(key)")
        }
        #expect(output.breakdown.seconds >= 2)
        #expect(output.breakdown.slowSeconds <= output.breakdown.seconds)
        #expect(output.breakdown.slowOrders <= 100)
        // The slow orders second by second add up to the totals, each second listed once and in order.
        let bySecond = output.breakdown.slowOrdersBySecond
        #expect(bySecond.map(\.orders).reduce(0, +) == output.breakdown.slowOrders)
        #expect(bySecond.count == output.breakdown.slowSeconds)
        #expect(bySecond.allSatisfy { $0.orders > 0 && $0.second >= 0 })
        #expect(bySecond.map(\.second) == bySecond.map(\.second).sorted() && Set(bySecond.map(\.second)).count == bySecond.count)
        // Vacuums, analyzes and a checkpoint (none is likely in two seconds) fall within the run's seconds, in order;
        // each names its table but a checkpoint.
        let maintenance = output.breakdown.maintenance
        #expect(maintenance.allSatisfy { $0.second >= 0 && $0.second <= output.breakdown.seconds })
        #expect(maintenance.allSatisfy { ($0.table == nil) == ($0.kind == "checkpoint") })
        #expect(maintenance.map(\.second) == maintenance.map(\.second).sorted())
    }

    struct BusOutput: Decodable {
        struct Work: Decodable {
            var rate: Double
            var walBytesPerMessage: Double?
            var messages: Int
            var seconds: Double
        }
        struct Round: Decodable {
            var limitSingle: Work
            var busSingle: Work
            var limitBatched: Work
            var busBatched: Work
        }
        struct Report: Decodable {
            var rounds: [Round]
            var limitSingleWork: Work
            var busSingleWork: Work
            var limitBatchedWork: Work
            var busBatchedWork: Work
            var redeliverySeconds: [Double]
        }
        struct Figure: Decodable {
            var name: String
            var value: Double
            var reference: String
            var ratio: Double?
        }
        var report: Report
        var figures: [Figure]
    }

    @Test func aShortBusRunCombinesItsRoundsIntoEachFigure() async throws {
        let result = try await Subprocess.run(
            .path(builtProduct("postbox")),
            arguments: [
                "bench", "bus", "--connections", "4", "--seconds", "1", "--rounds", "2", "--batch-size", "10",
                "--redelivery-runs", "1", "--json",
            ],
            output: .string(limit: 1 << 20),
            error: .string(limit: 1 << 22)
        )
        try #require(result.terminationStatus.isSuccess, "bench failed: \(result.standardError)")
        let output = try JSONDecoder().decode(BusOutput.self, from: Data(result.standardOutput.utf8))
        let report = output.report
        try #require(report.rounds.count == 2)

        let combined: [(String, BusOutput.Work, [BusOutput.Work])] = [
            ("limit 1/txn", report.limitSingleWork, report.rounds.map(\.limitSingle)),
            ("bus 1/txn", report.busSingleWork, report.rounds.map(\.busSingle)),
            ("limit batched", report.limitBatchedWork, report.rounds.map(\.limitBatched)),
            ("bus batched", report.busBatchedWork, report.rounds.map(\.busBatched)),
        ]
        for (name, total, rounds) in combined {
            #expect(rounds.allSatisfy { $0.messages > 0 }, "\(name): a round handled nothing")
            #expect(total.messages == rounds.map(\.messages).reduce(0, +), "\(name)")
            #expect(abs(total.seconds - rounds.map(\.seconds).reduce(0, +)) < 1e-9, "\(name)")
            #expect(abs(total.rate - Double(total.messages) / total.seconds) < 1e-6, "\(name)")
            #expect((total.walBytesPerMessage ?? 0) > 0, "\(name): no WAL per message")
        }

        let single = try #require(output.figures.first { $0.name == "bus: 1 event per transaction" })
        #expect(single.value == report.busSingleWork.rate)
        #expect(single.ratio == report.busSingleWork.rate / report.limitSingleWork.rate)
        let batched = try #require(
            output.figures.first { $0.name == "bus: 10 events per transaction" && $0.reference == "limit 10/txn" }
        )
        #expect(batched.ratio == report.busBatchedWork.rate / report.limitBatchedWork.rate)
        #expect(report.redeliverySeconds.count == 1)
    }
}
