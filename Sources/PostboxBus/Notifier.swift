import Logging
import PostgresNIO
import Synchronization

/// Sends the "something was published on these topics" wake-ups, after commit and coalesced.
///
/// PostgreSQL serialises the commits of transactions that NOTIFY, so the publishing transaction never does.
/// Instead the topics are collected here and sent in one `pg_notify` statement of its own; while one is in
/// flight, and for ``MessageBus/Configuration/notificationInterval`` after it, further topics pile up and go in the
/// next. Consumers in this process are woken at once, directly.
final class Notifier: Sendable {
    private let pending = Mutex<Set<String>>([])
    private let wake = WakeSignal()
    private let client: PostgresClient
    private let channel: String
    private let listener: BusListener
    private let interval: Duration
    private let logger: Logger

    init(client: PostgresClient, channel: String, interval: Duration, listener: BusListener, logger: Logger) {
        self.client = client
        self.channel = channel
        self.interval = interval
        self.listener = listener
        self.logger = logger
    }

    func committed(topics: Set<String>) {
        guard !topics.isEmpty else { return }
        listener.wakeLocal(topics: topics)
        pending.withLock { $0.formUnion(topics) }
        wake.signal()
    }

    func run() async {
        while !Task.isCancelled {
            await wake.wait(timeout: .seconds(60))
            let topics = pending.withLock { pending in
                defer { pending.removeAll() }
                return Array(pending).sorted()
            }
            guard !topics.isEmpty else { continue }
            do {
                // A notifying transaction gets a transaction id and so a commit record; committing it
                // asynchronously spares a WAL flush per notification (a hint lost in a server crash costs
                // nothing: consumers look at the table after every reconnect).
                let statement = Notify(channel: channel, topics: topics)
                try await client.withOpenConnection { [logger] connection in
                    for try await _ in try await connection.execute(statement, logger: logger) {}
                }
            } catch {
                // A lost wake-up only delays consumers until their next poll.
                logger.debug("bus notification failed", metadata: ["error": "\(DatabaseErrorText.describe(error))"])
            }
            // Each notification costs a statement here and a wake-up in every listening process: a busy publisher
            // sends at most one per interval. One that publishes less often is never held back.
            if interval > .zero { try? await Task.sleep(for: interval) }
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
