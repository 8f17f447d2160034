import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Holds one LISTEN connection for the whole process and wakes the consumers whose topics were published.
///
/// It listens on one channel per topic its consumers registered (``NotificationChannel``), so a notification
/// reaches only the processes that consume its topic. A process without consumers holds no LISTEN connection.
///
/// Given ``MessageBus/Configuration/listenerConnection``, the connection is its own, outside the pool. That is
/// the safe choice with PostgresNIO 1.33.2: a pooled connection that the server closes while it is leased can be
/// handed out again, and a query on it never returns.
///
/// When the connection drops it reconnects after a backoff (100 ms, doubling to 5 s); after every (re)connect, and
/// whenever a consumer with new topics registers, it wakes every consumer, because notifications sent while it was
/// not listening are lost and only a look at the table finds their events.
final class BusListener: Sendable {
    private struct Registration {
        var topics: Set<String>
        var signal: WakeSignal
    }

    private let registrations = Mutex<[ObjectIdentifier: Registration]>([:])
    /// Signalled when the registered topics change: the channels listened on must follow.
    private let topicsChanged = WakeSignal()
    private let client: PostgresClient
    private let dedicatedConnection: PostgresConnection.Configuration?
    private let channelPrefix: String
    private let logger: Logger
    /// Times the listener started listening on all registered topics (after a connect or a change of topics);
    /// exposed for tests and diagnostics.
    let connectCount = Atomic<Int>(0)
    /// Notifications received; exposed for tests and diagnostics.
    let notificationsReceived = Atomic<Int>(0)

    init(client: PostgresClient, dedicatedConnection: PostgresConnection.Configuration?, channelPrefix: String, logger: Logger) {
        self.client = client
        self.dedicatedConnection = dedicatedConnection
        self.channelPrefix = channelPrefix
        self.logger = logger
    }

    func register(_ signal: WakeSignal, topics: [String]) {
        let isNew = registrations.withLock { registrations in
            let known = registrations.values.reduce(into: Set<String>()) { $0.formUnion($1.topics) }
            registrations[ObjectIdentifier(signal)] = Registration(topics: Set(topics), signal: signal)
            return !Set(topics).isSubset(of: known)
        }
        if isNew { topicsChanged.signal() }
    }

    func unregister(_ signal: WakeSignal) {
        _ = registrations.withLock { $0.removeValue(forKey: ObjectIdentifier(signal)) }
    }

    func wakeLocal(topics: Set<String>) {
        let signals = registrations.withLock { registrations in
            registrations.values.filter { !$0.topics.isDisjoint(with: topics) }.map(\.signal)
        }
        for signal in signals { signal.signal() }
    }

    private func wakeAll() {
        for signal in registrations.withLock({ $0.values.map(\.signal) }) { signal.signal() }
    }

    private var registeredTopics: Set<String> {
        registrations.withLock { $0.values.reduce(into: Set<String>()) { $0.formUnion($1.topics) } }
    }

    func channel(for topic: String) -> String {
        NotificationChannel.name(prefix: channelPrefix, topic: topic)
    }

    func run() async {
        var failures = 0
        while !Task.isCancelled {
            // Nothing to listen for (yet): no connection.
            while registeredTopics.isEmpty && !Task.isCancelled { await topicsChanged.wait(timeout: .seconds(60)) }
            let sessionsBefore = connectCount.load(ordering: .relaxed)
            do {
                if let dedicatedConnection {
                    let connection = try await PostgresConnection.connect(
                        configuration: dedicatedConnection, id: 0, logger: logger
                    )
                    do {
                        try await listen(on: connection)
                    } catch {
                        try? await connection.close()
                        throw error
                    }
                    try? await connection.close()
                } else {
                    try await client.withConnection { connection in
                        try await listen(on: connection)
                    }
                }
            } catch {
                if Task.isCancelled { return }
                // A connection that listened before it failed starts the backoff afresh.
                if connectCount.load(ordering: .relaxed) > sessionsBefore { failures = 0 }
                failures += 1
                logger.warning(
                    "bus listener lost its connection; consumers poll until it is back",
                    metadata: ["error": "\(String(reflecting: error))", "bus.listener.failures": "\(failures)"]
                )
                // No wake-up here: the reconnect below wakes every consumer, after the backoff.
                let backoff = min(5.0, 0.1 * Double(1 << min(failures - 1, 6)))
                try? await Task.sleep(for: .milliseconds(Int(backoff * 1000)))
            }
        }
    }

    /// Listens on the channels of the registered topics until cancelled or the connection fails; when the topics
    /// change, listens on the new set on the same connection.
    private func listen(on connection: PostgresConnection) async throws {
        while !Task.isCancelled {
            try await listen(on: connection, to: registeredTopics)
        }
    }

    /// Listens to `topics` until their set changes (returns) or a notification stream ends (throws).
    private func listen(on connection: PostgresConnection, to topics: Set<String>) async throws {
        let listening = ListeningCount()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for topic in topics {
                group.addTask {
                    try await connection.listen(on: self.channel(for: topic)) { notifications in
                        if listening.value.add(1, ordering: .relaxed).newValue == topics.count {
                            self.connectCount.add(1, ordering: .relaxed)
                            self.wakeAll()
                        }
                        for try await _ in notifications {
                            self.notificationsReceived.add(1, ordering: .relaxed)
                            self.wakeLocal(topics: [topic])
                        }
                    }
                    if !Task.isCancelled { throw ListenerError.notificationsEnded }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    await self.topicsChanged.wait(timeout: .seconds(60))
                    if self.registeredTopics != topics { return }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// How many of a session's channels are listened on so far.
private final class ListeningCount: Sendable {
    let value = Atomic<Int>(0)
}

/// Why a listening session ended without a change of topics.
private enum ListenerError: Error {
    /// A notification stream finished: the connection is gone.
    case notificationsEnded
}
