import Foundation
import PostgresNIO

/// The limit's two statements, prepared once per connection as the bus's are (and as the pgbench baseline ran
/// them, `-M prepared`), so that the limit and the bus differ in the work they do, not in how they send it.
enum PlainSQLQueueStatements {
    /// Inserts one row per payload.
    struct Insert: PostgresPreparedStatement {
        static let name = "postbox_bench_plain_insert_v1"
        static let sql = "INSERT INTO public.bench_queue (payload) SELECT unnest($1::text[])::jsonb"
        typealias Row = ()

        var payloads: [String]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(payloads)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }

    /// Claims and deletes up to `limit` of the oldest rows, returning each message whole (as the baseline's
    /// `RETURNING *` does, and as the bus hands its handler the event).
    struct Claim: PostgresPreparedStatement {
        static let name = "postbox_bench_plain_claim_v1"
        static let sql = """
            DELETE FROM public.bench_queue WHERE id = ANY(ARRAY(
                SELECT id FROM public.bench_queue ORDER BY id FOR UPDATE SKIP LOCKED LIMIT $1))
            RETURNING id, payload::text, created_at
            """
        typealias Row = (Int64, String, Date)

        var limit: Int

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(limit)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}
