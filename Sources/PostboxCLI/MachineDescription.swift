import Foundation
import Logging
import PostgresNIO

/// What a benchmark ran on: cores, memory, PostgreSQL version and its durability settings.
struct MachineDescription: Codable, Sendable {
    var cores: Int
    var memoryGiB: Double
    var postgres: String
    var fsync: String
    var synchronousCommit: String
    var fullPageWrites: String

    static func read(client: PostgresClient, logger: Logger) async throws -> MachineDescription {
        let rows = try await client.query(
            """
            SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit'),
                current_setting('full_page_writes')
            """,
            logger: logger
        )
        for try await (version, fsync, synchronous, fullPages) in rows.decode((String, String, String, String).self) {
            return MachineDescription(
                cores: ProcessInfo.processInfo.activeProcessorCount,
                memoryGiB: (Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824 * 10).rounded() / 10,
                postgres: version,
                fsync: fsync,
                synchronousCommit: synchronous,
                fullPageWrites: fullPages
            )
        }
        throw ValidationFailure("the server did not report its settings")
    }

    var summary: String {
        "\(cores) cores, \(memoryGiB) GiB, PostgreSQL \(postgres) (fsync=\(fsync), synchronous_commit=\(synchronousCommit), full_page_writes=\(fullPageWrites))"
    }
}
