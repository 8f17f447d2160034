import Foundation
import PostgresNIO
import Testing

@testable import PostboxBus

/// Retention's plans must not depend on statistics: the bus's tables are left out of automatic analyzes.
@Suite("Retention plans", .timeLimit(.minutes(2)))
struct RetentionPlanTests {
    /// With nothing old enough, a slice must find that out through the `handled_at` index, not by reading the
    /// whole history, on a table PostgreSQL has never analysed.
    @Test func aSliceWalksTheHandledIndexOnATableNeverAnalysed() async throws {
        try await withBus { harness in
            try await harness.execute(
                """
                INSERT INTO bus.handled (subscription, event_id, attempts, handled_by)
                SELECT 'recent', gen_random_uuid(), 1, 'test' FROM generate_series(1, 20000)
                """
            )
            try await harness.execute("VACUUM bus.handled")
            let statistics = try await harness.scalar(
                "SELECT count(*)::int FROM pg_stats WHERE schemaname = 'bus' AND tablename = 'handled'",
                as: Int.self
            )
            try #require(statistics == 0, "the table must look as it does without automatic analyzes")

            let slice = Retention.slice(olderThan: .seconds(3600))
            let rows = try await harness.client.query(
                PostgresQuery(unsafeSQL: "EXPLAIN (COSTS OFF) \(slice.sql)", binds: slice.binds),
                logger: testLogger
            )
            var lines: [String] = []
            for try await line in rows.decode(String.self) { lines.append(line) }
            let plan = lines.joined(separator: "\n")
            #expect(plan.contains("Index Scan using handled_at on handled"), "\(plan)")
            #expect(!plan.contains("Seq Scan on handled"), "\(plan)")
        }
    }
}
