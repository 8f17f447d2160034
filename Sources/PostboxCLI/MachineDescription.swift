import Foundation
import Logging
import PostgresNIO

/// What a benchmark ran on: cores, memory, processor, a single-core speed yardstick, PostgreSQL's version and its
/// durability settings.
///
/// Two virtual machines with the same cores and memory can differ twofold in speed, and every figure with them.
/// The processor's name and the yardstick, measured in the same run, tell such runs apart.
struct MachineDescription: Codable, Sendable {
    var cores: Int
    var memoryGiB: Double
    /// The processor's model name from `/proc/cpuinfo`, when the system reports one.
    var processor: String?
    /// Millions of dependent multiply-xor-shift steps per second on one core, measured over about 0.3 s.
    var singleCoreMegaStepsPerSecond: Double
    var postgres: String
    var fsync: String
    var synchronousCommit: String
    var fullPageWrites: String

    static func read(connection: PostgresConnection, logger: Logger) async throws -> MachineDescription {
        let rows = try await connection.query(
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
                processor: processorName(),
                singleCoreMegaStepsPerSecond: measureSingleCore(),
                postgres: version,
                fsync: fsync,
                synchronousCommit: synchronous,
                fullPageWrites: fullPages
            )
        }
        throw ValidationFailure("the server did not report its settings")
    }

    var summary: String {
        let processor = self.processor.map { "\($0), " } ?? ""
        return "\(cores) cores (\(processor)single core \(Int(singleCoreMegaStepsPerSecond.rounded())) M steps/s), "
            + "\(memoryGiB) GiB, PostgreSQL \(postgres) "
            + "(fsync=\(fsync), synchronous_commit=\(synchronousCommit), full_page_writes=\(fullPageWrites))"
    }

    /// The first `model name` in `/proc/cpuinfo`, or nil where there is none (not Linux, or an architecture that
    /// names it otherwise).
    static func processorName(cpuinfo path: String = "/proc/cpuinfo") -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            return name.isEmpty ? nil : name
        }
        return nil
    }

    /// Counts steps of a chain in which every step needs the previous one's result, so the count follows the core's
    /// clock and latency rather than its width; the best of three 0.1 s windows, so a descheduled moment does not
    /// count.
    static func measureSingleCore() -> Double {
        let clock = ContinuousClock()
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var best = 0.0
        for _ in 0..<3 {
            var steps = 0
            let started = clock.now
            var elapsed = Duration.zero
            while elapsed < .milliseconds(100) {
                for _ in 0..<100_000 {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    state ^= state >> 29
                }
                steps += 100_000
                elapsed = clock.now - started
            }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            best = max(best, Double(steps) / seconds / 1e6)
        }
        // The chain's end feeds the result, so the optimiser cannot drop the loop.
        return (best * 10).rounded() / 10 + (state == 0 ? 1e-9 : 0)
    }
}
