import Logging
import PostgresNIO
import Synchronization

/// Sends the "something was published on these topics" wake-ups, after commit and coalesced.
///
/// PostgreSQL serialises the commits of transactions that NOTIFY, so the publishing transaction never does.
/// Instead a wake-up is a `pg_notify` statement of its own, sent after the commit: at once on the connection that
/// committed, while it is still in hand (``committed(topics:on:)``), when no other wake-up was sent within
/// ``MessageBus/Configuration/notificationInterval``; otherwise the topics pile up here and this notifier's loop
/// sends them in one statement when the interval is over. Consumers in this process are woken at once, directly.
final class Notifier: Sendable {
    private struct State {
        var pending: Set<String> = []
        /// When the last wake-up was sent, by the loop or on a committing connection.
        var lastSent: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let wake = WakeSignal()
    private let client: PostgresClient
    private let channel: String
    private let listener: BusListener
    private let interval: Duration
    private let logger: Logger
    /// Wake-ups sent on the connection that committed; for tests and diagnostics.
    let sentOnCommittingConnection = Atomic<Int>(0)
    /// Wake-ups sent by the loop; for tests and diagnostics.
    let sentByLoop = Atomic<Int>(0)

    init(client: PostgresClient, channel: String, interval: Duration, listener: BusListener, logger: Logger) {
        self.client = client
        self.channel = channel
        self.interval = interval
        self.listener = listener
        self.logger = logger
    }

    /// After a commit whose connection is gone: the loop sends the wake-up.
    func committed(topics: Set<String>) {
        guard !topics.isEmpty else { return }
        listener.wakeLocal(topics: topics)
        state.withLock { $0.pending.formUnion(topics) }
        wake.signal()
    }

    /// After a commit on `connection`, still held: sends the wake-up on it at once, with any topics still pending,
    /// unless one was sent within the interval; then the loop sends it when the interval is over.
    ///
    /// Sent here, a wake-up costs no hop to the loop's task and no second lease from the pool: on the order flow's
    /// way each of its three hops between services starts this way.
    func committed(topics: Set<String>, on connection: PostgresConnection) async {
        guard !topics.isEmpty else { return }
        listener.wakeLocal(topics: topics)
        let now = ContinuousClock.now
        // A statement sent on a connection the server has just closed may never be answered (PostgresNIO 1.33.2), and
        // a producer's connection has no watchdog: a closed one leaves the wake-up to the loop.
        let isOpen = !connection.isClosed
        let due = state.withLock { state -> [String]? in
            state.pending.formUnion(topics)
            if !isOpen { return nil }
            if let lastSent = state.lastSent, now - lastSent < interval { return nil }
            return takePending(&state, at: now)
        }
        guard let due else { return wake.signal() }
        sentOnCommittingConnection.add(1, ordering: .relaxed)
        await send(due) { statement in
            for try await _ in try await connection.execute(statement, logger: logger) {}
        }
    }

    func run() async {
        while !Task.isCancelled {
            await wake.wait(timeout: .seconds(60))
            while !Task.isCancelled {
                let now = ContinuousClock.now
                let (due, wait) = state.withLock { state -> ([String], Duration?) in
                    guard !state.pending.isEmpty else { return ([], nil) }
                    // Each wake-up costs a statement here and a wake-up in every listening process: a busy
                    // publisher sends at most one per interval. One that publishes less often is never held back.
                    if let lastSent = state.lastSent, now - lastSent < interval { return ([], interval - (now - lastSent)) }
                    return (takePending(&state, at: now), nil)
                }
                if let wait {
                    try? await Task.sleep(for: wait)
                    continue
                }
                guard !due.isEmpty else { break }
                sentByLoop.add(1, ordering: .relaxed)
                await send(due) { [client, logger] statement in
                    try await client.withOpenConnection { connection in
                        for try await _ in try await connection.execute(statement, logger: logger) {}
                    }
                }
            }
        }
    }

    private func takePending(_ state: inout State, at now: ContinuousClock.Instant) -> [String] {
        state.lastSent = now
        defer { state.pending.removeAll() }
        return state.pending.sorted()
    }

    private func send(_ topics: [String], _ execute: (Notify) async throws -> Void) async {
        do {
            // A notifying transaction gets a transaction id and so a commit record; committing it asynchronously
            // spares a WAL flush per notification (a hint lost in a server crash costs nothing: consumers look at
            // the table after every reconnect).
            try await execute(Notify(channel: channel, topics: topics))
        } catch {
            // A lost wake-up only delays consumers until their next poll.
            logger.debug("bus notification failed", metadata: ["error": "\(DatabaseErrorText.describe(error))"])
        }
    }
}

extension Notifier {
    /// The wake-up for `topics`, committed asynchronously; prepared, since sent unnamed PostgreSQL planned it at
    /// every notification.
    struct Notify: PostgresPreparedStatement {
        static let name = "postbox_bus_notify_v1"
        static let sql = """
            SELECT pg_notify($1, topic) FROM unnest($2::text[]) AS topic, set_config('synchronous_commit', 'off', true)
            """
        typealias Row = ()

        var channel: String
        var topics: [String]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(channel)
            bindings.append(topics)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }
}
