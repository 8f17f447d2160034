import Foundation
import Logging
import PostgresNIO

/// A broken invariant, with the rows that show it.
public struct Violation: Sendable, CustomStringConvertible, Codable {
    /// Which invariant of PRODUCT.md ("Consistency invariants"): 1–6, or 7 for the trace check.
    public var invariant: Int
    /// What it is about: an order, a product, an event.
    public var subject: String
    /// What is wrong, with the witness rows.
    public var detail: String

    public var description: String { "invariant \(invariant) (\(ConsistencyChecker.names[invariant] ?? "?")): \(subject): \(detail)" }
}

/// Checks the consistency invariants across every service's schema, the card processor's ledger and the bus, once
/// the system is quiet.
public struct ConsistencyChecker: Sendable {
    static let names: [Int: String] = [
        1: "every order final", 2: "confirmed orders paid once and stock taken", 3: "rejected/cancelled orders hold nothing",
        4: "stock conserved", 5: "no event lost", 6: "no effect twice", 7: "the trace reaches every service",
    ]

    /// The events a checkout causes, which carry its trace; a later cancellation is a request with a trace of its own.
    static let checkoutFlow = ["order.placed", "stock.reserved", "stock.rejected", "payment.captured", "payment.failed"]

    let system: PostboxSystem
    /// How many dead letters the scenario expects (0 for most).
    let expectedDeadLetters: Int

    /// Creates the value from its parts.
    public init(system: PostboxSystem, expectedDeadLetters: Int = 0) {
        self.system = system
        self.expectedDeadLetters = expectedDeadLetters
    }

    /// Every violation found; empty when all invariants hold.
    public func check() async throws -> [Violation] {
        let initialStock = system.initialStock
        let expected = expectedDeadLetters
        return try await system.withDatabase { db in
            var violations: [Violation] = []
            let logger = PostboxSystem.logger

            // 1. Every order reaches a final state.
            for try await (id, status, cancelling) in try await db.query(
                """
                SELECT id::text, status, cancel_requested_at IS NOT NULL FROM orders.orders
                WHERE status = 'pending' OR (status = 'confirmed' AND cancel_requested_at IS NOT NULL)
                """,
                logger: logger
            ).decode((String, String, Bool).self) {
                violations.append(
                    .init(invariant: 1, subject: "order \(id)", detail: cancelling ? "cancellation still in flight" : "still \(status)")
                )
            }

            // 2. A confirmed order: one captured payment of its total, one charge in the ledger, stock taken.
            for try await row in try await db.query(
                """
                SELECT o.id::text, o.total_cents,
                    (SELECT count(*) FROM payments.payments p WHERE p.order_id = o.id AND p.status = 'captured' AND p.amount_cents = o.total_cents)::int,
                    (SELECT count(*) FROM payments.payments p WHERE p.order_id = o.id)::int,
                    (SELECT count(*) FROM payment_gateway.charges c WHERE lower(c.reference) = o.id::text AND c.status = 'captured')::int,
                    (SELECT coalesce(sum(c.amount_cents), 0) FROM payment_gateway.charges c WHERE lower(c.reference) = o.id::text AND c.status = 'captured')::bigint,
                    (SELECT coalesce(sum(r.amount_cents), 0) FROM payment_gateway.refunds r JOIN payment_gateway.charges c ON c.id = r.charge_id WHERE lower(c.reference) = o.id::text)::bigint,
                    coalesce((SELECT status FROM inventory.reservations r WHERE r.order_id = o.id), 'none')
                FROM orders.orders o WHERE o.status = 'confirmed'
                """,
                logger: logger
            ).decode((String, Int, Int, Int, Int, Int, Int, String).self) {
                let (id, total, captured, payments, charges, charged, refunded, reservation) = row
                var problems: [String] = []
                if captured != 1 || payments != 1 { problems.append("\(captured) captured payment(s) of \(total) among \(payments)") }
                if charges != 1 || charged != total {
                    problems.append("\(charges) captured charge(s) in the ledger totalling \(charged), expected one of \(total)")
                }
                if refunded != 0 { problems.append("\(refunded) refunded in the ledger") }
                if reservation != "committed" { problems.append("reservation \(reservation), expected committed") }
                if !problems.isEmpty {
                    violations.append(.init(invariant: 2, subject: "order \(id) (confirmed)", detail: problems.joined(separator: "; ")))
                }
            }

            // 3. A rejected or cancelled order holds no stock and has no net charge.
            for try await row in try await db.query(
                """
                SELECT o.id::text, o.status,
                    (SELECT coalesce(sum(p.amount_cents), 0) FROM payments.payments p WHERE p.order_id = o.id AND p.status = 'captured')::bigint,
                    ((SELECT coalesce(sum(c.amount_cents), 0) FROM payment_gateway.charges c WHERE lower(c.reference) = o.id::text AND c.status = 'captured')
                     - (SELECT coalesce(sum(r.amount_cents), 0) FROM payment_gateway.refunds r JOIN payment_gateway.charges c ON c.id = r.charge_id WHERE lower(c.reference) = o.id::text))::bigint,
                    coalesce((SELECT status FROM inventory.reservations r WHERE r.order_id = o.id), 'none')
                FROM orders.orders o WHERE o.status IN ('rejected', 'cancelled')
                """,
                logger: logger
            ).decode((String, String, Int, Int, String).self) {
                let (id, status, capturedInPayments, netInLedger, reservation) = row
                var problems: [String] = []
                if capturedInPayments != 0 { problems.append("payments holds a captured payment of \(capturedInPayments)") }
                if netInLedger != 0 { problems.append("the ledger holds a net charge of \(netInLedger)") }
                if ["reserved", "committed"].contains(reservation) {
                    problems.append("inventory still holds its stock (reservation \(reservation))")
                }
                if !problems.isEmpty {
                    violations.append(.init(invariant: 3, subject: "order \(id) (\(status))", detail: problems.joined(separator: "; ")))
                }
            }

            // 4. Stock is conserved: initial = on hand + confirmed; nothing reserved when quiet.
            var confirmedBySKU: [String: Int] = [:]
            for try await (sku, quantity) in try await db.query(
                """
                SELECT l.sku, sum(l.quantity)::int FROM orders.order_lines l JOIN orders.orders o ON o.id = l.order_id
                WHERE o.status = 'confirmed' GROUP BY l.sku
                """,
                logger: logger
            ).decode((String, Int).self) { confirmedBySKU[sku] = quantity }
            for try await (sku, onHand, reserved) in try await db.query(
                "SELECT sku, on_hand::int, reserved::int FROM inventory.products ORDER BY sku",
                logger: logger
            ).decode((String, Int, Int).self) {
                var problems: [String] = []
                if reserved != 0 { problems.append("\(reserved) still reserved") }
                if onHand < 0 { problems.append("on hand \(onHand)") }
                if let initial = initialStock[sku], initial != onHand + (confirmedBySKU[sku] ?? 0) {
                    problems.append("initial \(initial) ≠ on hand \(onHand) + confirmed \(confirmedBySKU[sku] ?? 0)")
                }
                if !problems.isEmpty { violations.append(.init(invariant: 4, subject: "product \(sku)", detail: problems.joined(separator: "; "))) }
            }

            // 5. No event lost: handled by every subscriber or dead-lettered; nothing left to deliver.
            for try await (id, type, subscription) in try await db.query(
                """
                SELECT e.id::text, e.type, s.subscription FROM bus.events e JOIN bus.subscriptions s ON s.topic = e.type
                WHERE e.published_at > s.created_at
                  AND NOT EXISTS (SELECT 1 FROM bus.handled h WHERE h.subscription = s.subscription AND h.event_id = e.id)
                  AND NOT EXISTS (SELECT 1 FROM bus.dead_letters d WHERE d.subscription = s.subscription AND d.event_id = e.id)
                ORDER BY e.published_at LIMIT 50
                """,
                logger: logger
            ).decode((String, String, String).self) {
                violations.append(
                    .init(invariant: 5, subject: "event \(id) (\(type))", detail: "neither handled nor dead-lettered by \(subscription)")
                )
            }
            var deadLetters: [String] = []
            for try await (subscription, type, reason) in try await db.query(
                """
                SELECT d.subscription, coalesce(e.type, '?'), d.reason FROM bus.dead_letters d
                LEFT JOIN bus.events e ON e.id = d.event_id ORDER BY d.dead_at
                """,
                logger: logger
            ).decode((String, String, String).self) { deadLetters.append("\(subscription): \(type): \(reason)") }
            if deadLetters.count != expected {
                violations.append(
                    .init(
                        invariant: 5,
                        subject: "dead letters",
                        detail: "\(deadLetters.count) dead letter(s), expected \(expected): " + deadLetters.joined(separator: " | ")
                    )
                )
            }

            // 6. No effect twice: one charge per order in the ledger, one reaction per event and type.
            for try await (reference, count) in try await db.query(
                "SELECT reference, count(*)::int FROM payment_gateway.charges GROUP BY reference HAVING count(*) > 1",
                logger: logger
            ).decode((String, Int).self) {
                violations.append(.init(invariant: 6, subject: "order \(reference)", detail: "\(count) charges in the ledger"))
            }
            for try await (charge, refunded, amount) in try await db.query(
                """
                SELECT c.id, sum(r.amount_cents)::bigint, c.amount_cents::bigint FROM payment_gateway.refunds r
                JOIN payment_gateway.charges c ON c.id = r.charge_id GROUP BY c.id, c.amount_cents HAVING sum(r.amount_cents) > c.amount_cents
                """,
                logger: logger
            ).decode((String, Int, Int).self) {
                violations.append(.init(invariant: 6, subject: "charge \(charge)", detail: "refunded \(refunded) of \(amount)"))
            }
            for try await (cause, type, count) in try await db.query(
                """
                SELECT causation_id::text, type, count(*)::int FROM bus.events WHERE causation_id IS NOT NULL
                GROUP BY causation_id, type HAVING count(*) > 1
                """,
                logger: logger
            ).decode((String, String, Int).self) {
                violations.append(.init(invariant: 6, subject: "event \(cause)", detail: "caused \(count) \(type) events"))
            }

            // 7. The checkout's trace id reaches every service that handled the order.
            for try await (id, trace, events, tracedEvents, charges, tracedCharges) in try await db.query(
                """
                SELECT o.id::text, o.trace_id,
                    (SELECT count(*) FROM bus.events e WHERE lower(e.ordering_key) = o.id::text AND e.type = ANY(\(Self.checkoutFlow)))::int,
                    (SELECT count(*) FROM bus.events e WHERE lower(e.ordering_key) = o.id::text AND e.type = ANY(\(Self.checkoutFlow))
                        AND e.traceparent LIKE '%' || o.trace_id || '%')::int,
                    (SELECT count(*) FROM payment_gateway.charges c WHERE lower(c.reference) = o.id::text)::int,
                    (SELECT count(*) FROM payment_gateway.charges c WHERE lower(c.reference) = o.id::text AND c.trace_id = o.trace_id)::int
                FROM orders.orders o WHERE o.trace_id IS NOT NULL
                """,
                logger: logger
            ).decode((String, String, Int, Int, Int, Int).self) {
                if events != tracedEvents || charges != tracedCharges {
                    violations.append(
                        .init(
                            invariant: 7,
                            subject: "order \(id)",
                            detail: "trace \(trace) on \(tracedEvents) of \(events) events and \(tracedCharges) of \(charges) charges"
                        )
                    )
                }
            }
            return violations
        }
    }
}
