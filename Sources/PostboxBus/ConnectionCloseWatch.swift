import NIOCore
import PostgresNIO
import Synchronization

/// Calls back the statements waiting on a connection a second after the connection closes.
///
/// One callback on each connection's `closeFuture`, registered the first time a statement runs on it, serves every
/// later statement: a statement adds itself while it runs and removes itself when done. (A callback per statement
/// would pile up on a long-lived connection's `closeFuture` until it closes; a timer per statement costs more than
/// the statement's own bookkeeping.)
final class ConnectionCloseWatch: Sendable {
    static let shared = ConnectionCloseWatch()

    /// How long a statement may still finish after its connection closed before it is given up.
    static let grace = TimeAmount.seconds(1)

    private struct Watched {
        weak var connection: PostgresConnection?
        /// Which registration this is: a close callback of an earlier connection at the same address (gone
        /// without its entry being removed) must not fire for this one.
        var generation: UInt64
        var waiting: [UInt64: @Sendable () -> Void] = [:]
    }

    private let watched = Mutex<[ObjectIdentifier: Watched]>([:])
    private let nextId = Atomic<UInt64>(0)

    /// Calls `onClosed` once, a grace period after `connection` closes, unless ``unwatch(_:_:)`` comes first.
    func watch(_ connection: PostgresConnection, onClosed: @escaping @Sendable () -> Void) -> UInt64 {
        let key = ObjectIdentifier(connection)
        let id = nextId.add(1, ordering: .relaxed).newValue
        let isFirst = watched.withLock { watched -> Bool in
            // A connection that went away unclosed may have left its address to this one: start afresh then.
            if let entry = watched[key], entry.connection === connection {
                watched[key]!.waiting[id] = onClosed
                return false
            }
            watched[key] = Watched(connection: connection, generation: id, waiting: [id: onClosed])
            return true
        }
        if isFirst {
            let eventLoop = connection.eventLoop
            connection.closeFuture.whenComplete { _ in
                eventLoop.scheduleTask(in: Self.grace) { self.closed(key, generation: id) }
            }
        }
        return id
    }

    /// Forgets a statement that finished.
    func unwatch(_ connection: PostgresConnection, _ id: UInt64) {
        let key = ObjectIdentifier(connection)
        watched.withLock { watched in _ = watched[key]?.waiting.removeValue(forKey: id) }
    }

    private func closed(_ key: ObjectIdentifier, generation: UInt64) {
        let waiting = watched.withLock { watched -> [@Sendable () -> Void] in
            guard watched[key]?.generation == generation else { return [] }
            return watched.removeValue(forKey: key)?.waiting.values.map { $0 } ?? []
        }
        for onClosed in waiting { onClosed() }
    }
}
