import Foundation
import Subprocess
import Testing

/// `postbox bench system` through the built command: a short run prints its figures and where the latency came
/// from, and leaves its warm-up out of both. It checks what the command reports, never how fast anything was.
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
            var waits: [Wait]
            var slowOrders: Int
            var slowSeconds: Int
            var seconds: Int
        }
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

        // Every measured order's events, each handled once by each subscriber, and none of the warm-up's: at 50/s
        // the last warm-up orders' events are still published after the first measured checkout.
        let waits = Dictionary(uniqueKeysWithValues: output.breakdown.waits.map { ("\($0.subscription) ← \($0.eventType)", $0) })
        #expect(
            Set(waits.keys) == [
                "inventory ← order.placed", "payments ← order.placed", "payments ← stock.reserved",
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
    }
}
