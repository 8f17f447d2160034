public import Logging
public import PostgresNIO

/// A vacuum or analyze of one table, or a checkpoint, within a window of time, as PostgreSQL records them: to lay
/// beside a run's slow seconds, since an autovacuum visit or the start of a checkpoint (after which every page's
/// first change writes the whole page to the WAL) is a common cause of them.
///
/// PostgreSQL keeps only the last run of each kind per table, and the last checkpoint, so one that ran again before
/// this is read shows only its later run.
public struct ServerMaintenance: Codable, Sendable, Equatable {
    /// What ran: `autovacuum` or `autoanalyze` (the autovacuum daemon's), `vacuum` or `analyze` (a command's), or
    /// `checkpoint`.
    public var kind: String
    /// The table, with its schema; nil for a checkpoint.
    public var table: String?
    /// In whole seconds from the window's start: when a vacuum or analyze finished, when a checkpoint began.
    public var second: Int

    /// Creates the value from its parts.
    public init(kind: String, table: String?, second: Int) {
        self.kind = kind
        self.table = table
        self.second = second
    }

    /// The vacuums and analyzes of the connected database's tables that finished between `start` and `end` (seconds
    /// since 1970 on PostgreSQL's clock), and the server's last checkpoint if it began then, in the order of those
    /// times. The checkpoint needs the right to call `pg_control_checkpoint()` (a superuser's by default), and
    /// PostgreSQL records its start to the second; without the right it is left out.
    public static func during(
        from start: Double,
        to end: Double,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [ServerMaintenance] {
        var found: [(at: Double, maintenance: ServerMaintenance)] = []
        for try await (at, kind, table) in try await connection.query(
            """
            SELECT extract(epoch FROM m.at)::float8, m.kind, s.schemaname || '.' || s.relname
            FROM pg_stat_user_tables s CROSS JOIN LATERAL (VALUES
                ('autovacuum', s.last_autovacuum), ('autoanalyze', s.last_autoanalyze),
                ('vacuum', s.last_vacuum), ('analyze', s.last_analyze)) AS m(kind, at)
            WHERE m.at >= to_timestamp(\(start)) AND m.at <= to_timestamp(\(end))
            """,
            logger: logger
        ).decode((Double, String, String).self) {
            found.append((at, ServerMaintenance(kind: kind, table: table, second: Int((at - start).rounded(.down)))))
        }
        // Recorded to the second: it counts if that second overlaps the window.
        if let checkpoint = try? await lastCheckpoint(on: connection, logger: logger), checkpoint + 1 > start, checkpoint <= end {
            let second = max(0, Int((checkpoint - start).rounded(.down)))
            found.append((checkpoint, ServerMaintenance(kind: "checkpoint", table: nil, second: second)))
        }
        return found.sorted { ($0.at, $0.maintenance.table ?? "", $0.maintenance.kind) < ($1.at, $1.maintenance.table ?? "", $1.maintenance.kind) }
            .map(\.maintenance)
    }

    /// When the server's last checkpoint began, in seconds since 1970 (`pg_control_checkpoint()`, which only a
    /// superuser may call by default).
    private static func lastCheckpoint(on connection: PostgresConnection, logger: Logger) async throws -> Double? {
        for try await time in try await connection.query(
            "SELECT extract(epoch FROM checkpoint_time)::float8 FROM pg_control_checkpoint()",
            logger: logger
        ).decode(Double.self) {
            return time
        }
        return nil
    }
}
