import ArgumentParser
import Foundation
import Logging
import PostboxBus
import PostboxScenarios
import PostboxService
import PostgresNIO

/// `postbox status [--json]`: the processes of a running `postbox up` and the bus's queues.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each process of a running `postbox up` (pid, port, ready) and the bus's queues and dead letters."
    )

    @Option(help: "The --port-base the system was started with.")
    var portBase: Int = 8080
    @Flag(help: "Print JSON for scripts.")
    var json = false

    struct Report: Codable {
        struct Process: Codable {
            var name: String
            var pid: Int32?
            var port: Int
            var alive: Bool
            var ready: Bool
            var restarts: Int
        }
        struct Queue: Codable {
            var subscription: String
            var depth: Int
            var ready: Int
            var leased: Int
            var retrying: Int
            var deadLetters: Int
            var oldestAgeSeconds: Double
        }
        var processes: [Process]
        var queues: [Queue]
        var totalDepth: Int
        var deadLetters: Int
    }

    func run() async throws {
        guard let state = try UpState.read(portBase: portBase), kill(state.supervisorPid, 0) == 0 else {
            throw ValidationFailure("no `postbox up` is running with --port-base \(portBase)")
        }
        var processes: [Report.Process] = []
        for entry in state.processes {
            let alive = entry.pid.map { kill($0, 0) == 0 } ?? false
            processes.append(
                .init(
                    name: entry.name,
                    pid: entry.pid,
                    port: entry.port,
                    alive: alive,
                    ready: await Shop.isReady(port: entry.port),
                    restarts: entry.restarts
                )
            )
        }
        let logger = Logger(label: "postbox.status")
        let admin = try DatabaseURL(state.databaseURL)
        let client = PostgresClient(configuration: admin.configuration, backgroundLogger: logger.quieted())
        let stats = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await MessageBus(client: client, logger: logger).stats()
        }
        let report = Report(
            processes: processes,
            queues: stats.subscriptions.map {
                .init(
                    subscription: $0.name,
                    depth: $0.depth,
                    ready: $0.ready,
                    leased: $0.leased,
                    retrying: $0.retrying,
                    deadLetters: $0.deadLetters,
                    oldestAgeSeconds: $0.oldestAgeSeconds
                )
            },
            totalDepth: stats.totalDepth,
            deadLetters: stats.totalDeadLetters
        )
        if json {
            print(try prettyJSON(report))
            return
        }
        print("process            pid      port   ready  restarts")
        for process in report.processes {
            print(
                process.name.padding(toLength: 19, withPad: " ", startingAt: 0)
                    + "\(process.pid.map(String.init) ?? "-")".padding(toLength: 9, withPad: " ", startingAt: 0)
                    + "\(process.port)".padding(toLength: 7, withPad: " ", startingAt: 0)
                    + (process.ready ? "yes" : "NO").padding(toLength: 7, withPad: " ", startingAt: 0)
                    + "\(process.restarts)"
            )
        }
        print("\nsubscription  depth  leased  retrying  dead letters  oldest (s)")
        for queue in report.queues {
            print(
                queue.subscription.padding(toLength: 14, withPad: " ", startingAt: 0)
                    + "\(queue.depth)".padding(toLength: 7, withPad: " ", startingAt: 0)
                    + "\(queue.leased)".padding(toLength: 8, withPad: " ", startingAt: 0)
                    + "\(queue.retrying)".padding(toLength: 10, withPad: " ", startingAt: 0)
                    + "\(queue.deadLetters)".padding(toLength: 14, withPad: " ", startingAt: 0)
                    + String(format: "%.1f", queue.oldestAgeSeconds)
            )
        }
    }
}
