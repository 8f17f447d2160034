import ArgumentParser
import Foundation

/// `postbox bench`: benchmarks that print numbers, each beside the limit or target it is measured against.
///
/// Without a subcommand it runs both: the bus against plain SQL, then the system (start-up and the order flow).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput, latency, start-up and recovery against what PostgreSQL itself does on this machine.",
        subcommands: [BenchAll.self, BusBench.self, SystemBench.self],
        defaultSubcommand: BenchAll.self
    )
}

/// `postbox bench all`: `bench bus` then `bench system`, each with its defaults (or `--json` for both).
struct BenchAll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "The bus benchmark, then the system benchmark, with their defaults."
    )

    @Flag(help: "Print JSON instead of tables.")
    var json = false

    func run() async throws {
        let bus = try BusBench.parse(json ? ["--json"] : [])
        try await bus.run()
        print("")
        let system = try SystemBench.parse(json ? ["--json"] : [])
        try await system.run()
    }
}

extension Bench {
    /// Writes back what is waiting in the page cache before a benchmark starts.
    ///
    /// A release build or the bus benchmark leaves gigabytes of dirty pages that the kernel writes back about 30 s
    /// later, in the middle of the next measurement, where every commit's flush waits behind it.
    static func settleDisk(progress: (String) -> Void) {
        progress("writing back the page cache before measuring")
        sync()
    }
}
