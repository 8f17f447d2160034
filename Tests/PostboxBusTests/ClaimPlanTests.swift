import Foundation
import PostgresNIO
import Testing

@testable import PostboxBus

/// The claim's plans must stay cheap however empty the queue looked when PostgreSQL last counted it.
@Suite("Claim plans", .timeLimit(.minutes(2)))
struct ClaimPlanTests {
    /// An autovacuum that finds a queue nearly drained records a handful of rows in a table of many pages, and the
    /// generic plans made after it trust that count. With the ordering check written as `p.id < d.id`, they then
    /// served it from a range of the primary key: every older delivery, dead ones included, for each candidate.
    /// In a two-minute order flow at 100/s that made the acknowledgement 100–1,000 times costlier once a backlog
    /// formed, and the flow never caught up. The check must go through the ordering index whatever the count.
    @Test func theOrderingCheckUsesTheOrderingIndexAfterANearlyDrainedQueueWasCounted() async throws {
        try await withBus { harness in
            try await harness.execute(
                """
                INSERT INTO bus.deliveries (subscription, event_id, ordering_key, visible_at)
                SELECT 'counted', gen_random_uuid(), 'key-' || n, now() FROM generate_series(1, 20000) n
                """
            )
            try await harness.execute(
                """
                DELETE FROM bus.deliveries
                WHERE id NOT IN (SELECT id FROM bus.deliveries ORDER BY id DESC LIMIT 5)
                """
            )
            try await harness.execute("VACUUM ANALYZE bus.deliveries")
            let counted = try await harness.scalar(
                "SELECT reltuples::int FROM pg_class WHERE oid = 'bus.deliveries'::regclass",
                as: Int.self
            )
            #expect(counted == 5)

            let plan = try await harness.client.withConnection { connection in
                try await connection.query("SET plan_cache_mode = force_generic_plan", logger: testLogger)
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "PREPARE claim(text, bigint, uuid, text, float8) AS \(DeliveryStatements.Claim.sql)"
                    ),
                    logger: testLogger
                )
                var lines: [String] = []
                let rows = try await connection.query(
                    "EXPLAIN (COSTS OFF) EXECUTE claim('counted', 1, gen_random_uuid(), 'test', 30)",
                    logger: testLogger
                )
                for try await line in rows.decode(String.self) { lines.append(line) }
                return lines.joined(separator: "\n")
            }
            #expect(plan.contains("deliveries_ordering"), "\(plan)")
            #expect(!plan.contains("(id < d.id)"), "\(plan)")
        }
    }
}
