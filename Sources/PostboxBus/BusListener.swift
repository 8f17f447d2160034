import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Holds one LISTEN connection for the whole process and wakes the consumers whose topics were published.
///
/// Given ``MessageBus/Configuration/listenerConnection``, the connection is its own, outside the pool. That is
/// the safe choice with PostgresNIO 1.33.2: a pooled connection that the server closes while it is leased can be
/// handed out again, and a query on it never returns.
///
/// When the connection drops it reconnects after a backoff (100 ms, doubling to 5 s); after every (re)connect it wakes every consumer, because
/// notifications sent while it was away are lost and only a look at the table finds their events.
final class BusListener: Sendable {
    private struct Registration {
        var topics: Set<String>
        var signal: WakeSignal
    }

    private let registrations = Mutex<[ObjectIdentifier: Registration]>([:])
    private let client: PostgresClient
    private let dedicatedConnection: PostgresConnection.Configuration?
    private let channel: String
    private let logger: Logger
    /// Times the LISTEN connection was (re)established; exposed for tests and diagnostics.
    let connectCount = Atomic<Int>(0)
    /// Notifications received; exposed for tests and diagnostics.
    let notificationsReceived = Atomic<Int>(0)

    init(client: PostgresClient, dedicatedConnection: PostgresConnection.Configuration?, channel: String, logger: Logger) {
        self.client = client
        self.dedicatedConnection = dedicatedConnection
        self.channel = channel
        self.logger = logger
    }

    func register(_ signal: WakeSignal, topics: [String]) {
        registrations.withLock { $0[ObjectIdentifier(signal)] = Registration(topics: Set(topics), signal: signal) }
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

    func run() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                if let dedicatedConnection {
                    let connection = try await PostgresConnection.connect(
                        configuration: dedicatedConnection,
                        id: 0,
                        logger: logger
                    )
                    do {
                        try await listen(on: connection) { failures = 0 }
                    } catch {
                        try? await connection.close()
                        throw error
                    }
                    try? await connection.close()
                } else {
                    try await client.withConnection { connection in
                        try await listen(on: connection) { failures = 0 }
                    }
                }
            } catch {
                if Task.isCancelled { return }
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

    private func listen(on connection: PostgresConnection, onListening: () -> Void) async throws {
        try await connection.listen(on: channel) { notifications in
            onListening()
            connectCount.add(1, ordering: .relaxed)
            wakeAll()
            for try await notification in notifications {
                notificationsReceived.add(1, ordering: .relaxed)
                wakeLocal(topics: [notification.payload])
            }
        }
    }
}
