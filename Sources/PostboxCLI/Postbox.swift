import ArgumentParser

/// The `postbox` command: run, inspect and measure the system.
@main
struct Postbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postbox",
        abstract: "Run, inspect and measure Postbox, the PostgreSQL-backed message bus and its services.",
        subcommands: [
            UpCommand.self, StatusCommand.self, DemoCommand.self, ScenarioCommand.self, BusCommand.self, DatabaseCommand.self,
            PostgresCommand.self, Bench.self, BusWorker.self,
        ]
    )
}
