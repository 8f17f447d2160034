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
///
/// Consumers of one subscription in this process form a group, and a publish wakes one idle consumer of each group
/// it concerns, in turn: woken together, every idle consumer of a subscription ran a claim for the same few events,
/// and all but one came back empty and asked when the next delivery was due. A consumer whose claim came back full
/// wakes the next idle one of its group (``wakeAnother(in:except:)``), so a burst still reaches them all, one claim
/// at a time. A group with no idle consumer is woken whole, as before: each looks again when it next waits.
final class BusListener: Sendable {
    private struct Registration {
        var topics: Set<String>
        /// The subscription: consumers of one group compete for the same deliveries.
        var group: String
        /// When it registered, to take turns in a stable order.
        var order: Int
        var signal: WakeSignal
    }

    private struct Registrations {
        var byId: [ObjectIdentifier: Registration] = [:]
        var registered = 0
        /// Each group's wake-ups so far, to take turns.
        var turns: [String: Int] = [:]

        /// One idle consumer of `members` (all of one group), taking turns; nil if none is idle.
        mutating func pickIdle(from members: [Registration], group: String) -> WakeSignal? {
            let idle = members.filter { $0.signal.isWaiting }.sorted { $0.order < $1.order }
            guard !idle.isEmpty else { return nil }
            let turn = turns[group, default: 0]
            turns[group] = turn &+ 1
            return idle[turn % idle.count].signal
        }
    }

    private let registrations = Mutex(Registrations())
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

    /// Wakes `signal` for publishes on `topics`, as one of the consumers of subscription `group`.
    func register(_ signal: WakeSignal, topics: [String], group: String) {
        registrations.withLock { registrations in
            registrations.registered += 1
            registrations.byId[ObjectIdentifier(signal)] = Registration(
                topics: Set(topics),
                group: group,
                order: registrations.registered,
                signal: signal
            )
        }
    }

    func unregister(_ signal: WakeSignal) {
        _ = registrations.withLock { $0.byId.removeValue(forKey: ObjectIdentifier(signal)) }
    }

    /// Wakes, in each group with a topic in `topics`, one idle consumer; if none is idle, every one, so that each
    /// looks again when it next waits (one of them may just have found the table empty before this publish).
    func wakeLocal(topics: Set<String>) {
        let signals = registrations.withLock { registrations in
            let concerned = registrations.byId.values.filter { !$0.topics.isDisjoint(with: topics) }
            return Dictionary(grouping: concerned, by: \.group).flatMap { group, members in
                registrations.pickIdle(from: members, group: group).map { [$0] } ?? members.map(\.signal)
            }
        }
        for signal in signals { signal.signal() }
    }

    /// Wakes one idle consumer of `group` other than `signal`'s, if there is one: the caller found more work than it
    /// could take, and a busy consumer looks again anyway when it has room.
    func wakeAnother(in group: String, except signal: WakeSignal) {
        let other = registrations.withLock { registrations in
            let members = registrations.byId.values.filter { $0.group == group && $0.signal !== signal }
            return registrations.pickIdle(from: members, group: group)
        }
        other?.signal()
    }

    private func wakeAll() {
        for signal in registrations.withLock({ $0.byId.values.map(\.signal) }) { signal.signal() }
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
                    metadata: ["error": "\(DatabaseErrorText.describe(error))", "bus.listener.failures": "\(failures)"]
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
