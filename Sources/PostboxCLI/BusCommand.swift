import ArgumentParser
import Foundation
import Logging
import PostboxBus
import PostboxService
import PostgresNIO

/// `postbox bus stats|dead-letters|replay|purge`: inspect and repair the bus of a database.
struct BusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus",
        abstract: "Inspect and repair the bus: queue stats, dead letters, replay and purge.",
        subcommands: [Stats.self, DeadLetterList.self, Replay.self, Purge.self]
    )

    /// Which database's bus: an explicit URL, or the one of a running `postbox up`.
    struct Target: ParsableArguments {
        @Option(help: "The database (a URL with a role that may use the bus schema); default: the running `postbox up`.")
        var databaseURL: String?
        @Option(help: "The --port-base of the running `postbox up` to use when no --database-url is given.")
        var portBase: Int = 8080

        func validate() throws {
            if let databaseURL { _ = try DatabaseURL(databaseURL) }
        }

        /// Runs `body` with a bus on the target database.
        func withBus<Result: Sendable>(_ body: @Sendable (MessageBus) async throws -> Result) async throws -> Result {
            let url: DatabaseURL
            if let databaseURL {
                url = try DatabaseURL(databaseURL)
            } else if let state = try UpState.read(portBase: portBase), kill(state.supervisorPid, 0) == 0 {
                url = try DatabaseURL(state.databaseURL)
            } else {
                throw ValidationFailure("no `postbox up` is running with --port-base \(portBase); give --database-url")
            }
            let logger = Logger(label: "postbox.bus")
            try await url.checkConnection(logger: logger.quieted())
            let client = PostgresClient(configuration: url.configuration, backgroundLogger: logger.quieted())
            do {
                return try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await client.run() }
                    defer { group.cancelAll() }
                    return try await body(MessageBus(client: client, logger: logger))
                }
            } catch  where error is PSQLError || error is PostgresTransactionError {
                throw DatabaseFailure(error, database: url)
            }
        }
    }

    /// Which dead letters a replay or purge touches; one of the three must be given, so nothing goes by accident.
    struct Selection: ParsableArguments {
        @Option(help: "Only this subscription's dead letters.")
        var subscription: String?
        @Option(name: .customLong("event"), help: "Only this event id (repeat for several).")
        var eventIds: [String] = []
        @Flag(help: "Every dead letter (of --subscription, if given).")
        var all = false

        func validate() throws {
            guard all || subscription != nil || !eventIds.isEmpty else {
                throw ValidationError("say which dead letters: --event ID, --subscription NAME, or --all")
            }
            _ = try ids()
        }

        /// Runs `operation` (replay or purge) on the selected dead letters of `target`; returns how many it touched.
        func apply(
            on target: Target,
            _ operation: @escaping @Sendable (DeadLetters, String?, [UUID]?) async throws -> Int
        ) async throws -> Int {
            let (subscription, ids) = (subscription, try ids())
            return try await target.withBus { bus in try await operation(bus.deadLetters, subscription, ids) }
        }

        func ids() throws -> [UUID]? {
            guard !eventIds.isEmpty else { return nil }
            return try eventIds.map { text in
                guard let id = UUID(uuidString: text) else { throw ValidationError("--event '\(text)' is not an event id (a UUID)") }
                return id
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue depth, leases, retries, dead letters and the oldest pending event's age, per subscription."
        )
        @OptionGroup var target: Target
        @Flag(help: "Print JSON for scripts.")
        var json = false

        func run() async throws {
            let stats = try await target.withBus { bus in try await bus.stats() }
            if json { return print(try prettyJSON(stats)) }
            print("subscription          ready  leased  scheduled  retrying  blocked keys  dead letters  oldest (s)")
            for queue in stats.subscriptions {
                print(
                    column(queue.name, 22) + column(queue.ready, 7) + column(queue.leased, 8) + column(queue.scheduled, 11)
                        + column(queue.retrying, 10) + column(queue.blockedKeys, 14) + column(queue.deadLetters, 14)
                        + String(format: "%.1f", queue.oldestAgeSeconds)
                )
            }
            print("total: \(stats.totalDepth) pending, \(stats.totalLeased) leased, \(stats.totalDeadLetters) dead letters")
        }
    }

    struct DeadLetterList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dead-letters",
            abstract: "List dead letters, newest first; with --event, show one with its body and every error."
        )
        @OptionGroup var target: Target
        @Option(help: "Only this subscription's dead letters.")
        var subscription: String?
        @Option(name: .customLong("event"), help: "Show this event id's dead letter in full.")
        var eventId: String?
        @Option(help: "At most this many.")
        var limit: Int = 50
        @Flag(help: "Print JSON for scripts.")
        var json = false

        func validate() throws {
            if let eventId, UUID(uuidString: eventId) == nil {
                throw ValidationError("--event '\(eventId)' is not an event id (a UUID)")
            }
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
        }

        func run() async throws {
            let eventId = self.eventId.flatMap(UUID.init(uuidString:))
            let letters = try await target.withBus { [subscription, limit] bus in
                try await bus.deadLetters.list(subscription: subscription, limit: eventId == nil ? limit : 10_000)
                    .filter { eventId == nil || $0.envelope.id == eventId }
            }
            if json { return print(try prettyJSON(letters.map(DeadLetterView.init))) }
            if let eventId {
                guard !letters.isEmpty else { throw ValidationFailure("no dead letter for event \(eventId)") }
                for letter in letters {
                    let view = DeadLetterView(letter)
                    print("subscription: \(view.subscription)\nevent:        \(view.eventId) \(view.type) v\(view.version)")
                    print("dead at:      \(view.deadAt)\nattempts:     \(view.attempts)\nreason:       \(view.reason)")
                    print("body:         \(view.payload)\nerrors:")
                    for error in view.errors { print("  - \(error)") }
                }
                return
            }
            print("dead at                    subscription   event                                 type                 attempts  reason")
            for letter in letters.map(DeadLetterView.init) {
                print(
                    column(letter.deadAt, 27) + column(letter.subscription, 15) + column(letter.eventId, 38)
                        + column("\(letter.type) v\(letter.version)", 21) + column(letter.attempts, 10) + letter.reason
                )
            }
            print("\(letters.count) dead letter(s)")
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put dead letters back into their subscription's queue with a fresh attempt count."
        )
        @OptionGroup var target: Target
        @OptionGroup var selection: Selection

        func run() async throws {
            let count = try await selection.apply(on: target) { try await $0.replay(subscription: $1, eventIds: $2) }
            print("replayed \(count) dead letter(s); consumers pick them up within their poll interval")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete dead letters for good.")
        @OptionGroup var target: Target
        @OptionGroup var selection: Selection

        func run() async throws {
            let count = try await selection.apply(on: target) { try await $0.purge(subscription: $1, eventIds: $2) }
            print("purged \(count) dead letter(s)")
        }
    }
}

/// A dead letter as `postbox bus dead-letters` prints it.
struct DeadLetterView: Codable {
    var subscription: String
    var eventId: String
    var type: String
    var version: Int
    var attempts: Int
    var reason: String
    var errors: [String]
    var deadAt: String
    var payload: String

    init(_ letter: DeadLetter) {
        subscription = letter.subscription
        eventId = letter.envelope.id.uuidString.lowercased()
        type = letter.envelope.type
        version = letter.envelope.version
        attempts = letter.attempts
        reason = letter.reason
        errors = letter.errors
        deadAt = ISO8601DateFormatter().string(from: letter.deadAt)
        payload = letter.envelope.payload
    }
}
