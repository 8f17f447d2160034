import EmbeddedPostgres
import Foundation
import Logging
import PostboxBus
import PostgresNIO
import ServiceLifecycle
import Subprocess
import Testing

/// `postbox bus` against a real database: dead letters listed, inspected, replayed and purged from the shell.
@Suite("postbox bus", .timeLimit(.minutes(2)))
struct BusCommandTests {
    struct Refused: PermanentHandlerError, CustomStringConvertible {
        var description: String { "the handler refuses this event" }
    }

    @Test func deadLettersAreListedInspectedReplayedAndPurgedFromTheCommandLine() async throws {
        let logger = SystemUnderTest.logger
        let server = try await EmbeddedPostgres.shared(logger: logger)
        let database = "e2e_bus_command_\(UUID().uuidString.prefix(8).lowercased())"
        try await server.createDatabase(database)
        let url = server.url(database: database)
        let client = PostgresClient(configuration: server.configuration(database: database), backgroundLogger: logger)
        let subscription = Subscription(name: "cli", topics: ["cli.tested"], pollInterval: .milliseconds(200))
        let events = (1...2).map { EventEnvelope(type: "cli.tested", payload: #"{"n":\#($0)}"#) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let bus = MessageBus(client: client, logger: logger)
            try await bus.migrate()
            try await bus.register(subscription)
            try await bus.publish(events)
            let consumer = bus.consumer(subscription) { _, _ in throw Refused() }
            let services = ServiceGroup(services: [bus, consumer], logger: logger)
            group.addTask { try await services.run() }
            try await eventually("both events dead-lettered") { try await bus.deadLetters.list().count == 2 }
            await services.triggerGracefulShutdown()
        }

        let list = try await postbox(["bus", "dead-letters", "--database-url", url])
        #expect(list.status == .exited(0))
        for event in events { #expect(list.output.contains(event.id.uuidString.lowercased())) }
        #expect(list.output.contains("permanent failure: the handler refuses this event"))
        #expect(list.output.contains("2 dead letter(s)"))

        let one = try await postbox(["bus", "dead-letters", "--database-url", url, "--event", events[0].id.uuidString])
        #expect(one.output.contains(#"body:         {"n": 1}"#))
        #expect(one.output.contains("  - attempt 1: the handler refuses this event"))

        let unselected = try await postbox(["bus", "replay", "--database-url", url])
        #expect(unselected.status != .exited(0))
        #expect(unselected.output.contains("say which dead letters: --event ID, --subscription NAME, or --all"))

        let replay = try await postbox(["bus", "replay", "--database-url", url, "--event", events[0].id.uuidString])
        #expect(replay.output.contains("replayed 1 dead letter(s)"))
        let stats = try await postbox(["bus", "stats", "--database-url", url, "--json"])
        let decoded = try JSONDecoder().decode(BusStats.self, from: Data(stats.output.utf8))
        let queue = try #require(decoded.subscriptions.first { $0.name == "cli" })
        #expect(queue.ready == 1 && queue.deadLetters == 1)

        let purge = try await postbox(["bus", "purge", "--database-url", url, "--all"])
        #expect(purge.output.contains("purged 1 dead letter(s)"))
        let after = try await postbox(["bus", "dead-letters", "--database-url", url])
        #expect(after.output.contains("0 dead letter(s)"))
        try await server.dropDatabase(database)
    }

    @Test func aDatabaseItCannotUseFailsAtOnceWithTheReason() async throws {
        let server = try await EmbeddedPostgres.shared(logger: SystemUnderTest.logger)
        let database = "e2e_bus_unset_\(UUID().uuidString.prefix(8).lowercased())"
        try await server.createDatabase(database)

        // Nothing listens there: a pool would retry for ever; the command says so and stops.
        let port = try FreePort.next()
        let unreachable = try await postbox(["bus", "stats", "--database-url", "postgres://postbox@127.0.0.1:\(port)/postbox"])
        #expect(unreachable.status != .exited(0))
        #expect(unreachable.output.contains("cannot connect to 127.0.0.1:\(port)/postbox as postbox"))
        #expect(unreachable.output.contains("Connection refused"))
        let setup = try await postbox(["db", "setup", "--database-url", "postgres://postbox@127.0.0.1:\(port)/postbox"])
        #expect(setup.status != .exited(0))
        #expect(setup.output.contains("cannot connect to 127.0.0.1:\(port)/postbox as postbox"))

        let unknownRole = try await postbox(["bus", "dead-letters", "--database-url", server.url(database: database, username: "nobody")])
        #expect(unknownRole.status != .exited(0))
        #expect(unknownRole.output.contains(#"role "nobody" does not exist"#))

        // A database the bus was never set up in: the server's words, then what to run.
        let unset = try await postbox(["bus", "stats", "--database-url", server.url(database: database)])
        #expect(unset.status != .exited(0))
        #expect(unset.output.contains("does not exist"))
        #expect(unset.output.contains("the bus is not set up in this database: run `postbox db setup"))
        #expect(!unset.output.contains("Generic description"))
        try await server.dropDatabase(database)
    }

    private func postbox(_ arguments: [String]) async throws -> (status: TerminationStatus, output: String) {
        let result = try await Subprocess.run(
            .path(builtProduct("postbox")),
            arguments: Arguments(arguments),
            output: .string(limit: 1 << 20),
            error: .string(limit: 1 << 20)
        )
        return (result.terminationStatus, result.standardOutput + result.standardError)
    }
}
