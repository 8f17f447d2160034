import ArgumentParser
import Foundation
import Logging
import PostboxBus
import PostboxService
import PostgresNIO
import ServiceLifecycle
import UnixSignals

/// A consumer in a process of its own, for crash tests and the redelivery benchmark.
///
/// It prints `claimed <event id> attempt <n>` when its handler starts, then behaves as `--mode` says: `hang` never
/// returns (so the test can SIGKILL it mid-handler), `crash` exits the process with status 70 mid-handler, `ack`
/// handles normally.
struct BusWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus-worker",
        abstract: "Run one bus consumer that hangs, crashes or acknowledges (for fault tests).",
        shouldDisplay: false
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case hang, crash, ack
    }

    @Option(help: "PostgreSQL URL of the bus database.") var databaseURL: String
    @Option(help: "Subscription name.") var subscription: String
    @Option(help: "Topic to consume (repeatable).") var topic: [String]
    @Option(help: "What the handler does.") var mode: Mode = .hang
    @Option(help: "Lease in milliseconds.") var leaseMilliseconds: Int = 5000
    @Option(help: "Attempts before dead letters.") var maxAttempts: Int = 5

    func run() async throws {
        let url = try DatabaseURL(databaseURL)
        let logger = Logger(label: "postbox.bus-worker")
        let client = PostgresClient(configuration: url.configuration, backgroundLogger: logger)
        let bus = MessageBus(
            client: client,
            configuration: .init(listenerConnection: url.connectionConfiguration),
            logger: logger
        )
        let mode = self.mode
        let subscription = Subscription(
            name: subscription,
            topics: topic,
            concurrency: 1,
            claimBatchSize: 1,
            lease: .milliseconds(leaseMilliseconds),
            maxAttempts: maxAttempts
        )
        let consumer = bus.consumer(subscription) { event, _ in
            FileHandle.standardOutput.write(Data("claimed \(event.id) attempt \(event.attempt)\n".utf8))
            switch mode {
            case .hang: try await Task.sleep(for: .seconds(3600))
            case .crash: Foundation.exit(70)
            case .ack: return
            }
        }
        let group = ServiceGroup(
            services: [client, bus, consumer],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        try await group.run()
    }
}
