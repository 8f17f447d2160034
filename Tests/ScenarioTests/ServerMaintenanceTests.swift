import EmbeddedPostgres
import Foundation
import Logging
import PostboxScenarios
import PostgresNIO
import Testing

/// The vacuums, analyzes and checkpoints a benchmark lists beside its slow seconds, read from PostgreSQL's records.
/// It runs on the process's shared server, which no scenario restarts under it.
@Suite("server maintenance")
struct ServerMaintenanceTests {
    @Test func aVacuumAnAnalyzeAndACheckpointAreListedInTheirWindowAndNotAfterIt() async throws {
        let server = try await EmbeddedPostgres.shared()
        let database = "maintenance_\(UUID().uuidString.prefix(8).lowercased())"
        try await server.createDatabase(database)
        let logger = Logger(label: "test")
        try await server.withConnection(database: database) { db in
            let start = try await Self.now(db)
            try await db.query("CREATE TABLE public.probe (id int PRIMARY KEY)", logger: logger)
            try await db.query("INSERT INTO public.probe SELECT generate_series(1, 100)", logger: logger)
            try await db.query("VACUUM public.probe", logger: logger)
            try await db.query("ANALYZE public.probe", logger: logger)
            try await db.query("CHECKPOINT", logger: logger)
            let end = try await Self.now(db)

            let found = try await ServerMaintenance.during(from: start, to: end, on: db, logger: logger)
            // The commands' runs, in the order they finished (an autovacuum visit meanwhile would add its own).
            let probe = found.filter { $0.table == "public.probe" && !$0.kind.hasPrefix("auto") }
            #expect(probe.map(\.kind) == ["vacuum", "analyze"], "\(found)")
            #expect(found.allSatisfy { $0.second >= 0 && Double($0.second) <= end - start }, "\(found)")
            // Recorded to the second, the checkpoint counts since its second overlaps the window; no other test in
            // this process uses the shared server, so the last checkpoint is this one.
            let checkpoints = found.filter { $0.kind == "checkpoint" }
            #expect(checkpoints.count == 1 && checkpoints[0].table == nil, "\(found)")

            let later = try await ServerMaintenance.during(from: end + 1, to: end + 60, on: db, logger: logger)
            #expect(!later.contains { $0.table == "public.probe" }, "\(later)")
        }
        try await server.dropDatabase(database)
    }

    /// PostgreSQL's clock, in seconds since 1970.
    private static func now(_ db: PostgresConnection) async throws -> Double {
        for try await now in try await db.query("SELECT extract(epoch FROM clock_timestamp())::float8", logger: Logger(label: "test"))
            .decode(Double.self)
        {
            return now
        }
        throw LabError("no clock reading")
    }
}
