import Foundation
import PostboxHarness
import PostgresNIO

extension PostboxSystem {
    /// Waits until the system is quiet: nothing left to deliver (no queued, leased, delayed or retrying delivery),
    /// every order final, no cancellation in flight. On timeout the error carries a full diagnostic dump.
    public func quiesce(timeout: Duration = .seconds(60)) async throws {
        try await eventually("the system to be quiet", timeout: timeout, interval: .milliseconds(50), diagnostic: { await self.diagnostic() }) {
            try await self.withDatabase { db in
                let rows = try await db.query(
                    """
                    SELECT (SELECT count(*) FROM bus.deliveries)::int
                         + (SELECT count(*) FROM orders.orders WHERE status = 'pending'
                                OR (status = 'confirmed' AND cancel_requested_at IS NOT NULL))::int
                    """,
                    logger: PostboxSystem.logger
                )
                for try await busy in rows.decode(Int.self) { return busy == 0 }
                return false
            }
        }
    }

    /// What the harness sees now: recent events and who handled them, what is still queued, dead letters,
    /// unfinished orders, and each process's last lines.
    public func diagnostic() async -> String {
        var text = "== diagnostic of \(database) ==\n"
        do {
            text += try await withDatabase { db in
                var out = "-- recent events (newest last): published, type, id, handled by subscription@attempts\n"
                for try await (at, type, id, handled) in try await db.query(
                    """
                    SELECT * FROM (
                        SELECT e.published_at, e.type, e.id::text,
                            coalesce((SELECT string_agg(h.subscription || '@' || h.attempts, ', ') FROM bus.handled h WHERE h.event_id = e.id), '')
                        FROM bus.events e ORDER BY e.published_at DESC LIMIT 40) r ORDER BY 1
                    """,
                    logger: PostboxSystem.logger
                ).decode((Date, String, String, String).self) {
                    out += "\(iso(at)) \(type) \(id) handled: [\(handled)]\n"
                }
                out += "-- deliveries still queued: subscription, type, attempts, visible at, lease owner, errors\n"
                for try await (subscription, type, attempts, visible, owner, errors) in try await db.query(
                    """
                    SELECT d.subscription, coalesce(e.type, '?'), d.attempts, d.visible_at, coalesce(d.lease_owner, '-'),
                        array_to_string(d.errors, ' | ')
                    FROM bus.deliveries d LEFT JOIN bus.events e ON e.id = d.event_id ORDER BY d.id LIMIT 40
                    """,
                    logger: PostboxSystem.logger
                ).decode((String, String, Int, Date, String, String).self) {
                    out += "\(subscription) \(type) attempts=\(attempts) visible=\(iso(visible)) owner=\(owner) errors=\(errors)\n"
                }
                out += "-- dead letters\n"
                for try await (subscription, id, reason) in try await db.query(
                    "SELECT subscription, event_id::text, reason FROM bus.dead_letters ORDER BY dead_at",
                    logger: PostboxSystem.logger
                ).decode((String, String, String).self) {
                    out += "\(subscription) \(id): \(reason)\n"
                }
                out += "-- orders not final, with their rows in every service\n"
                for try await (id, status, payment, reservation, charges) in try await db.query(
                    """
                    SELECT o.id::text, o.status || CASE WHEN o.cancel_requested_at IS NOT NULL THEN ' (cancelling)' ELSE '' END,
                        coalesce((SELECT p.status || ' ' || p.amount_cents FROM payments.payments p WHERE p.order_id = o.id), 'no payment'),
                        coalesce((SELECT r.status FROM inventory.reservations r WHERE r.order_id = o.id), 'no reservation'),
                        (SELECT count(*) FROM payment_gateway.charges c WHERE lower(c.reference) = o.id::text)::int
                    FROM orders.orders o WHERE o.status = 'pending' OR o.cancel_requested_at IS NOT NULL LIMIT 20
                    """,
                    logger: PostboxSystem.logger
                ).decode((String, String, String, String, Int).self) {
                    out += "order \(id): \(status); payments: \(payment); inventory: \(reservation); ledger: \(charges) charge(s)\n"
                }
                return out
            }
        } catch {
            text += "(the database could not be read: \(error))\n"
        }
        for process in processes {
            text +=
                "-- \(process.name) (\(process.isRunning ? "running, pid \(process.pid ?? 0)" : "not running"); exits: \(process.exits.map(\.status)))\n"
            text += process.tail(25) + "\n"
        }
        return text
    }
}

func iso(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: date)
}
