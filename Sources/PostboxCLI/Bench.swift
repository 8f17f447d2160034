import ArgumentParser

/// `postbox bench`: benchmarks that print numbers, each beside the limit it is measured against.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput and recovery against what PostgreSQL itself does on this machine.",
        subcommands: [BusBench.self, SystemBench.self],
        defaultSubcommand: BusBench.self
    )
}
