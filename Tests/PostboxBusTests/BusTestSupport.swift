import EmbeddedPostgres
import Foundation
import Logging
import PostboxBus
import PostgresNIO
import ServiceLifecycle
import Testing

/// A quiet logger for tests: errors only.
let testLogger: Logger = {
    var logger = Logger(label: "postbox.bus.tests")
    logger.logLevel = ProcessInfo.processInfo.environment["POSTBOX_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
    return logger
}()

/// Fresh databases with the bus schema, cloned from one migrated template per test process.
enum BusDatabases {
    static func make(prefix: String) async throws -> (EmbeddedPostgres, String) {
        let server = try await EmbeddedPostgres.shared()
        let factory = await FactoryHolder.shared.factory(server: server)
        return (server, try await factory.makeDatabase(prefix: prefix))
    }
}

private actor FactoryHolder {
    static let shared = FactoryHolder()
    private var factory: DatabaseFactory?

    func factory(server: EmbeddedPostgres) -> DatabaseFactory {
        if let factory { return factory }
        let created = DatabaseFactory(server: server, templateName: "bus_template", logger: testLogger) { config, logger in
            let client = PostgresClient(configuration: config, backgroundLogger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                try await MessageBus(client: client, logger: logger).migrate()
                try await client.query("CREATE SCHEMA app", logger: logger)
                try await client.query(
                    """
                    CREATE TABLE app.effects (
                        n bigserial PRIMARY KEY, event_id uuid NOT NULL, consumer text NOT NULL, attempt int NOT NULL,
                        sequence_key text, at timestamptz NOT NULL DEFAULT clock_timestamp())
                    """,
                    logger: logger
                )
                group.cancelAll()
            }
        }
        factory = created
        return created
    }
}

/// One test's world: a fresh database with the bus schema, a running client and a running bus.
struct BusHarness: Sendable {
    let server: EmbeddedPostgres
    let database: String
    let client: PostgresClient
    let bus: MessageBus

    /// Runs `services` (consumers, usually) while `body` runs, then shuts them down gracefully.
    func running<Result: Sendable>(
        _ services: [any Service],
        _ body: () async throws -> Result
    ) async throws -> Result {
        let group = ServiceGroup(
            configuration: .init(services: services.map { .init(service: $0) }, logger: testLogger)
        )
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                let result = try await body()
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                tasks.cancelAll()
                throw error
            }
        }
    }

    /// A second client and bus on the same database, as another process would have.
    func withOtherProcess<Result: Sendable>(
        runBus: Bool = true,
        notificationInterval: Duration = .milliseconds(3),
        _ body: (MessageBus) async throws -> Result
    ) async throws -> Result {
        let client = PostgresClient(configuration: server.configuration(database: database), backgroundLogger: testLogger)
        let bus = MessageBus(
            client: client,
            configuration: .init(
                notificationInterval: notificationInterval,
                instanceName: "other",
                listenerConnection: server.connectionConfiguration(database: database)
            ),
            logger: testLogger
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            if runBus { group.addTask { try await bus.run() } }
            defer { group.cancelAll() }
            return try await body(bus)
        }
    }

    /// The first column of the first row of `query`, decoded as `Value`.
    func scalar<Value: PostgresDecodable & Sendable>(_ query: PostgresQuery, as: Value.Type = Value.self) async throws -> Value {
        let rows = try await client.query(query, logger: testLogger)
        for try await value in rows.decode(Value.self) { return value }
        throw HarnessError("query returned no row: \(query.sql)")
    }

    func execute(_ query: PostgresQuery) async throws {
        try await client.query(query, logger: testLogger)
    }
}

/// Runs `body` with a fresh bus database, a running client and a running bus.
func withBus<Result: Sendable>(
    _ name: String = #function,
    configuration: MessageBus.Configuration = .init(instanceName: "test"),
    _ body: (BusHarness) async throws -> Result
) async throws -> Result {
    let (server, database) = try await BusDatabases.make(prefix: String(name.prefix(while: { $0 != "(" })))
    let client = PostgresClient(configuration: server.configuration(database: database), backgroundLogger: testLogger)
    var configuration = configuration
    configuration.listenerConnection = configuration.listenerConnection ?? server.connectionConfiguration(database: database)
    let bus = MessageBus(client: client, configuration: configuration, logger: testLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        group.addTask { try await bus.run() }
        defer { group.cancelAll() }
        return try await body(BusHarness(server: server, database: database, client: client, bus: bus))
    }
}

/// Polls `condition` until it holds or `timeout` passes; then fails with `what` (never a fixed sleep).
///
/// The default deadline guards against a hang, not a slow machine: the whole suite runs in parallel on two cores,
/// where a backlog of 200 one-event transactions that takes 2 s alone took 15–20 s (and once over 20 s) beside the
/// other suites.
func eventually(
    _ what: String,
    timeout: Duration = .seconds(60),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return }
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out after \(timeout) waiting for: \(what)", sourceLocation: sourceLocation)
            throw HarnessError("timed out waiting for: \(what)")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A test event body.
struct TestEvent: EventPayload, Equatable {
    static let eventType = "test.happened"
    static let eventVersion = 1
    var sequence: Int
    var key: String = ""
}

/// Subscription settings that make tests fast: short leases and backoffs.
func fastSubscription(
    _ name: String,
    topics: [String] = [TestEvent.eventType],
    concurrency: Int = 4,
    claimBatchSize: Int = 16,
    handlerBatchSize: Int = 1,
    lease: Duration = .seconds(2),
    maxAttempts: Int = 5,
    pollInterval: Duration = .seconds(1)
) -> Subscription {
    Subscription(
        name: name,
        topics: topics,
        concurrency: concurrency,
        claimBatchSize: claimBatchSize,
        handlerBatchSize: handlerBatchSize,
        lease: lease,
        maxAttempts: maxAttempts,
        retry: RetryPolicy(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200)),
        pollInterval: pollInterval
    )
}

/// Records an effect of handling in `app.effects` (created in the template), in the handler's own transaction.
func recordEffect(_ event: ReceivedEvent, by consumer: String, in transaction: BusTransaction) async throws {
    try await transaction.connection.query(
        """
        INSERT INTO app.effects (event_id, consumer, attempt, sequence_key)
        VALUES (\(event.id), \(consumer), \(event.attempt), \(try? event.decode(TestEvent.self).key))
        """,
        logger: transaction.logger
    )
}

extension BusHarness {
    /// A consumer whose handler records one row in `app.effects` per event, named after the subscription.
    func recordingConsumer(_ subscription: Subscription) -> Consumer {
        bus.consumer(subscription) { event, transaction in
            try await recordEffect(event, by: subscription.name, in: transaction)
        }
    }

    func effectCount() async throws -> Int {
        try await scalar("SELECT count(*)::int FROM app.effects")
    }

    func publish(_ events: [TestEvent], orderingKey: (TestEvent) -> String? = { _ in nil }) async throws -> [EventEnvelope] {
        let envelopes = try events.map { try EventEnvelope($0, orderingKey: orderingKey($0)) }
        try await bus.publish(envelopes)
        return envelopes
    }
}

/// The built `postbox` executable, which sits beside the test bundle.
func postboxExecutable() throws -> String {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("postbox").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw HarnessError("the postbox executable was not built beside the tests; run `swift build` first")
}
