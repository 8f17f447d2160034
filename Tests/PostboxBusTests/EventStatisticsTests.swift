import PostboxBus
import PostgresNIO
import Testing

/// Analyzes of the bus's tables must stay out of the flow's way: each is a burst of CPU at an autovacuum visit, and
/// sorting a sample of payloads was most of the event log's.
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

    /// Autovacuum never analyses the event log, the queue or the handled history: no plan of the bus depends on
    /// their statistics, and their analyzes took about two fifths of the burst that slowed the order flow.
    @Test func theLogTheQueueAndTheHandledHistoryAreLeftOutOfAutomaticAnalyzes() async throws {
        try await withBus { harness in
            let tables = try await harness.scalar(
                """
                SELECT string_agg(relname::text, ',' ORDER BY relname) FROM pg_class
                WHERE relnamespace = 'bus'::regnamespace AND relkind = 'r'
                  AND 'autovacuum_analyze_threshold=2147483647' = ANY(reloptions)
                """,
                as: String.self
            )
            #expect(tables == "deliveries,events,handled")
        }
    }
}
