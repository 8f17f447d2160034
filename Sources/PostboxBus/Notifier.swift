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
                try await client.execute(
                    """
                    SELECT pg_notify(\(channel), topic) FROM unnest(\(topics)::text[]) AS topic,
                        set_config('synchronous_commit', 'off', true)
                    """,
                    logger: logger
                )
            } catch {
                // A lost wake-up only delays consumers until their next poll.
                logger.debug("bus notification failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            // Each notification costs a statement here and a wake-up in every listening process: a busy publisher
            // sends at most one per interval. One that publishes less often is never held back.
            if interval > .zero { try? await Task.sleep(for: interval) }
        }
    }
}
