import EmbeddedPostgres
import Foundation
import Logging
import PostgresNIO

/// What PostgreSQL's `pg_stat_statements` counted during a run: the statements that cost the server most, per role.
struct StatementStats {
    /// The server settings that load and configure `pg_stat_statements` (it must be preloaded at start).
    static let serverSettings = [
        "shared_preload_libraries": "'pg_stat_statements'",
        "pg_stat_statements.track": "all",
        "pg_stat_statements.track_planning": "on",
    ]

    /// Creates the extension (in the `postgres` database, from where every database's statements can be read)
    /// and forgets what was counted so far.
    static func reset(on server: EmbeddedPostgres) async throws {
        try await server.execute(["CREATE EXTENSION IF NOT EXISTS pg_stat_statements", "SELECT pg_stat_statements_reset()"])
    }

    /// The `limit` statements with the most execution plus planning time since the last reset, as a table; `per`
    /// divides the call counts (for example by the number of orders).
    static func table(on server: EmbeddedPostgres, limit: Int = 25, per: Int, perName: String, logger: Logger) async throws -> String {
        try await server.withConnection { connection in
            var lines = [
                "statements by server time (pg_stat_statements):",
                "role        calls/\(perName)  plans/\(perName)  exec ms  plan ms  mean ms  statement",
            ]
            let rows = try await connection.query(
                """
                SELECT coalesce(r.rolname, '?'), s.calls, s.plans, s.total_exec_time, s.total_plan_time, s.mean_exec_time,
                    left(regexp_replace(s.query, '\\s+', ' ', 'g'), 90)
                FROM pg_stat_statements s LEFT JOIN pg_roles r ON r.oid = s.userid
                ORDER BY s.total_exec_time + s.total_plan_time DESC
                LIMIT \(limit)
                """,
                logger: logger
            )
            for try await (role, calls, plans, exec, plan, mean, query) in rows.decode(
                (String, Int, Int, Double, Double, Double, String).self
            ) {
                lines.append(
                    String(
                        format: "%@ %9.2f  %9.2f  %7.0f  %7.0f  %7.3f  %@",
                        role.padding(toLength: 11, withPad: " ", startingAt: 0),
                        Double(calls) / Double(max(per, 1)),
                        Double(plans) / Double(max(per, 1)),
                        exec,
                        plan,
                        mean,
                        query
                    )
                )
            }
            lines.append("")
            lines.append("per role: statements/\(perName), exec+plan ms/\(perName)")
            let totals = try await connection.query(
                """
                SELECT coalesce(r.rolname, '?'), sum(s.calls)::float8, sum(s.total_exec_time + s.total_plan_time)
                FROM pg_stat_statements s LEFT JOIN pg_roles r ON r.oid = s.userid
                GROUP BY 1 ORDER BY 3 DESC
                """,
                logger: logger
            )
            for try await (role, calls, time) in totals.decode((String, Double, Double).self) {
                lines.append(
                    String(
                        format: "%@ %7.1f  %7.3f",
                        role.padding(toLength: 16, withPad: " ", startingAt: 0),
                        calls / Double(max(per, 1)),
                        time / Double(max(per, 1))
                    )
                )
            }
            return lines.joined(separator: "\n")
        }
    }
}
