import EmbeddedPostgres
import Foundation
import PostboxHarness
import PostboxScenarios

/// Where the CPU went during an order-flow run: each process's CPU time per order, from `/proc`.
struct CPUPerOrder: Codable {
    /// Milliseconds of CPU per order, by process: PostgreSQL (the postmaster and its backends), each service
    /// instance, and the load generator (this process).
    var milliseconds: [String: Double]
    /// The processes in the order they are printed.
    var order: [String]
    var cores: Int
    /// The share of all cores the processes kept busy during the run.
    var busyShare: Double

    var totalMilliseconds: Double { milliseconds.values.reduce(0, +) }

    /// CPU time used so far by each process of the run; empty without `/proc`.
    static func sample(system: PostboxSystem, server: EmbeddedPostgres) -> [(String, Duration)] {
        var sample: [(String, Duration)] = []
        if let postmaster = try? server.postmasterProcessID(), let time = ProcessCPUTime.ofFamily(postmaster) {
            sample.append(("PostgreSQL", time))
        }
        for process in system.processes {
            if let pid = process.pid, let time = ProcessCPUTime.of(pid) { sample.append((process.name, time)) }
        }
        if let time = ProcessCPUTime.of(getpid()) { sample.append(("load generator", time)) }
        return sample
    }

    /// The difference of two samples, per order; nil if either is empty.
    init?(before: [(String, Duration)], after: [(String, Duration)], wall: Duration, orders: Int) {
        let start = Dictionary(before, uniquingKeysWith: { first, _ in first })
        var milliseconds: [String: Double] = [:]
        var order: [String] = []
        for (name, end) in after {
            guard let begin = start[name] else { continue }
            milliseconds[name] = (end - begin).seconds * 1000 / Double(max(orders, 1))
            order.append(name)
        }
        guard !order.isEmpty else { return nil }
        self.milliseconds = milliseconds
        self.order = order
        self.cores = ProcessInfo.processInfo.activeProcessorCount
        let used = milliseconds.values.reduce(0, +) * Double(orders)
        self.busyShare = used / max(wall.seconds * 1000 * Double(cores), 1)
    }

    /// One line: total, then each process.
    var summary: String {
        String(format: "%.1f ms of CPU per order (%.0f%% of %d cores): ", totalMilliseconds, busyShare * 100, cores)
            + order.map { "\($0) " + String(format: "%.1f", milliseconds[$0] ?? 0) }.joined(separator: ", ")
    }
}
