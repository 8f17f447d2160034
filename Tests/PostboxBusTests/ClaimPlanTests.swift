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
            #expect(try await countNearlyDrainedQueue(harness, deliveries: 20000, left: 5) == 5)

            let plan = try await harness.client.withConnection { connection in
                try await connection.query("SET plan_cache_mode = force_generic_plan", logger: testLogger)
                for (setting, value) in DeliveryRoutine.planningSettings {
                    try await connection.query("SELECT set_config(\(setting), \(value), false)", logger: testLogger)
                }
                let claim = try #require(DeliveryRoutines.claim.query)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "PREPARE claim(text, bigint, uuid, text, float8) AS \(claim)"),
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

    /// The per-delivery statements run as functions planned with index scans only (see `DeliveryRoutine`), so a plan
    /// made while the queue looked empty still finds the next delivery in a few pages once thousands wait. Planned
    /// with the default settings after a count of three deliveries in one page, the claim and the acknowledgement
    /// scanned the whole table and, for each visible delivery, the whole table again: about 92,000 buffers over
    /// 3,000 waiting deliveries instead of a few dozen.
    @Test(arguments: [
        "bus.claim_v1('backlog', 1, gen_random_uuid(), 'test', 30)",
        "bus.acknowledge_one_v1(0, gen_random_uuid(), 'test', 'backlog', 1, gen_random_uuid(), 30)",
    ])
    func aStatementPlannedWhileTheQueueLookedEmptyStaysCheapWhenABacklogForms(call: String) async throws {
        try await withBus { harness in
            try await harness.execute("ALTER TABLE bus.deliveries SET (autovacuum_enabled = false)")
            #expect(try await countNearlyDrainedQueue(harness, deliveries: 12, left: 3) == 3)
            let buffers = try await harness.client.withConnection { connection in
                // The generic plan, which a connection settles on after a few runs (forced, so the test need not
                // depend on PostgreSQL's choice between it and a custom one).
                try await connection.query("SET plan_cache_mode = force_generic_plan", logger: testLogger)
                for _ in 0..<2 {
                    try await connection.query(PostgresQuery(unsafeSQL: "SELECT * FROM \(call)"), logger: testLogger)
                }
                try await connection.query(
                    """
                    WITH e AS (
                        INSERT INTO bus.events (id, type, version, occurred_at, ordering_key, payload)
                        SELECT gen_random_uuid(), 'backlog.waited', 1, now(), 'key-' || n / 2, '{}'
                        FROM generate_series(0, 2999) n
                        RETURNING id, ordering_key)
                    INSERT INTO bus.deliveries (subscription, event_id, ordering_key, visible_at)
                    SELECT 'backlog', id, ordering_key, now() - interval '1 hour' FROM e
                    """,
                    logger: testLogger
                )
                var lines: [String] = []
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM \(call)"),
                    logger: testLogger
                )
                for try await line in rows.decode(String.self) { lines.append(line) }
                return lines.joined(separator: "\n")
            }
            let read = buffers.firstMatch(of: /Buffers: shared hit=(\d+)(?: read=(\d+))?/).map {
                Int($0.1)! + ($0.2.flatMap { Int($0) } ?? 0)
            }
            let total = try #require(read, "\(buffers)")
            #expect(total < 300, "\(buffers)")
        }
    }

    /// Fills `bus.deliveries` with `deliveries` rows of subscription `counted`, deletes all but the newest `left`,
    /// and has PostgreSQL count the table; returns the count it recorded.
    private func countNearlyDrainedQueue(_ harness: BusHarness, deliveries: Int, left: Int) async throws -> Int {
        try await harness.execute(
            """
            INSERT INTO bus.deliveries (subscription, event_id, ordering_key, visible_at)
            SELECT 'counted', gen_random_uuid(), 'key-' || n, now() FROM generate_series(1, \(deliveries)) n
            """
        )
        try await harness.execute(
            "DELETE FROM bus.deliveries WHERE id NOT IN (SELECT id FROM bus.deliveries ORDER BY id DESC LIMIT \(left))"
        )
        try await harness.execute("VACUUM ANALYZE bus.deliveries")
        return try await harness.scalar(
            "SELECT reltuples::int FROM pg_class WHERE oid = 'bus.deliveries'::regclass",
            as: Int.self
        )
    }
}
