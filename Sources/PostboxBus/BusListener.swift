import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Holds one LISTEN connection for the whole process and wakes the consumers whose topics were published.
///
/// When the connection drops it reconnects with backoff; after every (re)connect it wakes every consumer, because
/// notifications sent while it was away are lost and only a look at the table finds their events.
final class BusListener: Sendable {
    private struct Registration {
        var topics: Set<String>
        var signal: WakeSignal
    }

    private let registrations = Mutex<[ObjectIdentifier: Registration]>([:])
    private let client: PostgresClient
    private let channel: String
    private let logger: Logger
    /// Times the LISTEN connection was (re)established; exposed for tests and diagnostics.
    let connectCount = Atomic<Int>(0)

    init(client: PostgresClient, channel: String, logger: Logger) {
        self.client = client
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
                try await client.withConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        failures = 0
                        connectCount.add(1, ordering: .relaxed)
                        wakeAll()
                        for try await notification in notifications {
                            wakeLocal(topics: [notification.payload])
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning(
                    "bus listener lost its connection; consumers poll until it is back",
                    metadata: ["error": "\(String(reflecting: error))", "bus.listener.failures": "\(failures)"]
                )
                wakeAll()
                let backoff = min(5.0, 0.05 * Double(1 << min(failures, 7)))
                try? await Task.sleep(for: .milliseconds(Int(backoff * 1000)))
            }
        }
    }
}
