import EmbeddedPostgres
import Foundation
import PostgresNIO
import Synchronization
import Testing

@testable import PostboxBus

/// A handling that commits without waiting for the flush (`BusTransaction.commitAsynchronously`).
@Suite("Asynchronous commits", .timeLimit(.minutes(2)))
struct AsynchronousCommitTests {
    /// Records `synchronous_commit` as it stands when each handling's transaction commits: a deferred trigger runs
    /// at commit, after the consumer's or the acknowledgement's setting.
    private static let commitModeTable: [PostgresQuery] = [
        "CREATE TABLE app.commits (event_id uuid PRIMARY KEY, path text NOT NULL, mode text)",
        """
        CREATE FUNCTION app.record_commit_mode() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE app.commits SET mode = current_setting('synchronous_commit') WHERE event_id = NEW.event_id;
            RETURN NULL;
        END $$
        """,
        """
        CREATE CONSTRAINT TRIGGER record_commit_mode AFTER INSERT ON app.commits DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION app.record_commit_mode()
        """,
    ]

    @Test func onlyTheHandlingsThatAskCommitAsynchronouslyInEitherPath() async throws {
        try await withBus { harness in
            for statement in Self.commitModeTable { try await harness.execute(statement) }
            // One at a time and in order, so that a setting left on a connection would show in the next handling.
            let subscription = fastSubscription("modes", concurrency: 1, claimBatchSize: 1)
            let consumer = harness.bus.consumer(subscription) { event, transaction in
                let path = try event.decode(TestEvent.self).key
                if path.hasPrefix("async") { transaction.commitAsynchronously() }
                if path.hasSuffix("statement") {
                    try await transaction.acknowledgeInStatement { connection, acknowledgement in
                        let rows = try await connection.query(
                            """
                            WITH c AS (INSERT INTO app.commits (event_id, path) VALUES (\(event.id), \(path)) RETURNING 1)
                            SELECT (SELECT count(*) FROM c)::int, \(acknowledgement)
                            """,
                            logger: transaction.logger
                        )
                        for try await (_, result) in rows.decode((Int, String).self) { try acknowledgement.recordResult(result) }
                    }
                } else {
                    try await transaction.connection.query(
                        "INSERT INTO app.commits (event_id, path) VALUES (\(event.id), \(path))",
                        logger: transaction.logger
                    )
                }
            }
            try await harness.bus.register(subscription)
            let paths = ["async-statement", "sync-statement", "async-transaction", "sync-transaction"]
            _ = try await harness.publish(
                (0..<12).map { TestEvent(sequence: $0, key: paths[$0 % paths.count]) },
                orderingKey: { _ in "one at a time" }
            )
            try await harness.running([consumer]) {
                try await eventually("all 12 handled") {
                    try await harness.scalar("SELECT count(*)::int FROM app.commits WHERE mode IS NOT NULL") == 12
                }
            }
            let rows = try await harness.client.query(
                "SELECT path, string_agg(DISTINCT mode, ',') FROM app.commits GROUP BY path ORDER BY path",
                logger: testLogger
            )
            var modes: [String: String] = [:]
            for try await (path, mode) in rows.decode((String, String).self) { modes[path] = mode }
            #expect(
                modes == [
                    "async-statement": "off", "async-transaction": "off", "sync-statement": "on", "sync-transaction": "on",
                ]
            )
            #expect(try await harness.scalar("SELECT count(*)::int FROM bus.handled", as: Int.self) == 12)
        }
    }

    /// The guarantee the option rests on, shown with a crash that loses exactly the unwritten log: PostgreSQL's
    /// WAL writer is stopped, so an asynchronous commit stays in shared memory, and then killed, which makes the
    /// server reinitialise and recover from what reached the operating system. The handling is lost whole (writes,
    /// acknowledgement and claim) and its event is handled again, once; a synchronous handling before it survives.
    @Test func anAsynchronousCommitThatACrashOfPostgreSQLLosesIsHandledAgainOnce() async throws {
        let server = try await EmbeddedPostgres.start(
            .init(durability: .fast, settings: ["autovacuum": "off", "checkpoint_timeout": "1h"]),
            logger: testLogger
        )
        do {
            try await Self.loseAndRedo(on: server)
        } catch {
            try? await server.stop(.immediate)
            throw error
        }
        try await server.stop(.immediate)
    }

    private static func loseAndRedo(on server: EmbeddedPostgres) async throws {
        let client = PostgresClient(configuration: server.configuration(database: "postgres"), backgroundLogger: testLogger)
        var configuration = MessageBus.Configuration(instanceName: "test")
        configuration.listenerConnection = server.connectionConfiguration(database: "postgres")
        let bus = MessageBus(client: client, configuration: configuration, logger: testLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await bus.migrate()
            try await client.query("CREATE SCHEMA app", logger: testLogger)
            try await client.query(
                "CREATE TABLE app.handled (event_id uuid PRIMARY KEY, attempt int NOT NULL, lsn pg_lsn NOT NULL)",
                logger: testLogger
            )
            group.addTask { try await bus.run() }
            let harness = BusHarness(server: server, database: "postgres", client: client, bus: bus)

            let handlings = Mutex<[UUID: Int]>([:])
            let subscription = fastSubscription("redone", concurrency: 1, pollInterval: .milliseconds(200))
            let consumer = bus.consumer(subscription) { event, transaction in
                handlings.withLock { $0[event.id, default: 0] += 1 }
                if try event.decode(TestEvent.self).key == "async" { transaction.commitAsynchronously() }
                try await transaction.acknowledgeInStatement { connection, acknowledgement in
                    // The log's insert position before the commit record: unwritten at the crash, it is lost.
                    let rows = try await connection.query(
                        """
                        WITH h AS (
                            INSERT INTO app.handled VALUES (\(event.id), \(event.attempt), pg_current_wal_insert_lsn()) RETURNING 1)
                        SELECT (SELECT count(*) FROM h)::int, \(acknowledgement)
                        """,
                        logger: transaction.logger
                    )
                    for try await (_, result) in rows.decode((Int, String).self) { try acknowledgement.recordResult(result) }
                }
            }
            try await bus.register(subscription)
            func publish(_ key: String) async throws -> UUID {
                try await harness.publish([TestEvent(sequence: 0, key: key)])[0].id
            }
            func handled(_ id: UUID) async throws -> Bool {
                try await harness.scalar("SELECT count(*)::int FROM app.handled WHERE event_id = \(id)", as: Int.self) == 1
            }

            try await harness.running([consumer]) {
                let durable = try await publish("sync")
                try await eventually("the synchronous handling committed") { try await handled(durable) }

                let walWriter = try await harness.scalar(
                    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'",
                    as: Int32.self
                )
                #expect(kill(walWriter, SIGSTOP) == 0)
                // Nothing else here writes the log meanwhile (no autovacuum, no checkpoint); should something have
                // written it past the commit all the same, that handling would survive, so try with another event.
                var lost: UUID?
                for _ in 0..<3 where lost == nil {
                    let id = try await publish("async")
                    try await eventually("the asynchronous handling committed") { try await handled(id) }
                    let unwritten = try await harness.scalar(
                        "SELECT pg_current_wal_lsn() <= lsn FROM app.handled WHERE event_id = \(id)",
                        as: Bool.self
                    )
                    if unwritten { lost = id }
                }
                let event = try #require(lost, "the log was written past every asynchronous commit before the crash")
                #expect(kill(walWriter, SIGKILL) == 0)

                // The test's own reads go on fresh connections from here: a pooled one the crash closed could hold
                // a statement for ever (docs/bus.md, "Connections that die under a statement").
                func count(_ query: PostgresQuery) async throws -> Int {
                    try await server.withConnection { connection in
                        for try await value in try await connection.query(query, logger: testLogger).decode(Int.self) {
                            return value
                        }
                        throw HarnessError("no row for \(query.sql)")
                    }
                }
                try await eventually("the lost handling is redone once the server has recovered") {
                    guard handlings.withLock({ $0[event] }) == 2 else { return false }
                    return (try? await count("SELECT count(*)::int FROM app.handled WHERE event_id = \(event)")) == 1
                }
                #expect(handlings.withLock { $0[durable] } == 1, "the synchronous handling survived the crash")
                #expect(try await count("SELECT count(*)::int FROM app.handled WHERE event_id = \(durable)") == 1)
                #expect(try await count("SELECT count(*)::int FROM bus.handled WHERE event_id = \(event)") == 1)
                #expect(try await count("SELECT count(*)::int FROM bus.deliveries") == 0)
                #expect(try await count("SELECT count(*)::int FROM bus.dead_letters") == 0)
            }
        }
    }
}
