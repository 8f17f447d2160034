import PostboxBus
import PostgresNIO
import Testing

/// An analyze of the event log must stay cheap: it is a burst of CPU at every autovacuum visit that finds the table
/// changed by a tenth, and sorting a sample of payloads was most of it.
@Suite("Event statistics", .timeLimit(.minutes(2)))
struct EventStatisticsTests {
    /// PostgreSQL keeps statistics on the columns statements filter, join or sort on, and none on the payload or
    /// the opaque trace, causation and ordering columns.
    @Test func anAnalyzeOfTheEventsSkipsTheColumnsNoStatementFiltersOn() async throws {
        try await withBus { harness in
            let placed = try await harness.publish((1...20).map { TestEvent(sequence: $0) }, orderingKey: { "key-\($0.sequence % 3)" })
            try await harness.bus.publish(try placed.map { try $0.causing(TestEvent(sequence: 100)) })
            try await harness.execute("ANALYZE bus.events")
            let analyzed = try await harness.scalar(
                """
                SELECT string_agg(attname::text, ',' ORDER BY attname) FROM pg_stats
                WHERE schemaname = 'bus' AND tablename = 'events'
                """,
                as: String.self
            )
            #expect(analyzed == "correlation_id,id,occurred_at,published_at,type,version")
        }
    }
}
