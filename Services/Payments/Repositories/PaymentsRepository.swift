import Foundation
import Logging
import PostboxBus
import PostgresNIO

/// A payment as the payments service stores it.
struct PaymentRecord: Sendable, Equatable {
    var id: UUID
    var orderId: UUID
    var amountCents: Int
    var status: String
    var chargeId: String?
    var reason: String?
}

/// The SQL of the payments service; every method runs on the caller's connection (its transaction).
struct PaymentsRepository: Sendable {
    func recordIntent(orderId: UUID, amountCents: Int, token: String, on connection: PostgresConnection, logger: Logger) async throws {
        let statement = PaymentsStatements.RecordIntent(orderId: orderId, amountCents: amountCents, token: token)
        // Drained as a row sequence: PostgresNIO 1.33.2's command-tag overload traps on prepared statements.
        for try await _ in try await connection.execute(statement, logger: logger) {}
    }

    /// What `stock.reserved` needs to charge, in one statement: whether the order has a payment already, and its
    /// intent, which only an older `stock.reserved` without the amount needs (nil unless an `order.placed` delivery
    /// recorded one).
    func chargeState(
        orderId: UUID,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (paid: Bool, intent: (amountCents: Int, token: String)?) {
        var state: (paid: Bool, intent: (amountCents: Int, token: String)?)?
        for try await (paid, amount, token) in try await connection.execute(PaymentsStatements.ChargeState(orderId: orderId), logger: logger) {
            state = (paid, amount.flatMap { amount in token.map { (amount, $0) } })
        }
        if let state { return state }
        throw PaymentsRepositoryError(description: "the charge-state query returned no row")
    }

    func payment(orderId: UUID, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> PaymentRecord? {
        let lock = forUpdate ? " FOR UPDATE" : ""
        let rows = try await connection.query(
            """
            SELECT id, order_id, amount_cents, status, charge_id, reason FROM payments.payments
            WHERE order_id = \(orderId)\(unescaped: lock)
            """,
            logger: logger
        )
        for try await row in rows.decode((UUID, UUID, Int, String, String?, String?).self) {
            return PaymentRecord(id: row.0, orderId: row.1, amountCents: row.2, status: row.3, chargeId: row.4, reason: row.5)
        }
        return nil
    }

    /// Stores the payment, publishes `event` and makes `acknowledgement`, in one statement.
    func insert(
        _ payment: PaymentRecord,
        publishing event: EventEnvelope,
        acknowledging acknowledgement: StatementAcknowledgement,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        let statement = PaymentsStatements.InsertPaymentPublishAndAcknowledge(
            payment: payment,
            event: event,
            acknowledgement: acknowledgement
        )
        // The event's id is new (time-ordered, made for this payment), so it is always published.
        for try await row in try await connection.execute(statement, logger: logger) {
            try acknowledgement.recordResult(row.acknowledgement)
        }
    }

    func markRefunded(orderId: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "UPDATE payments.payments SET status = 'refunded', updated_at = now() WHERE order_id = \(orderId)",
            logger: logger
        )
    }
}

/// A query that did not return what it must.
struct PaymentsRepositoryError: Error, CustomStringConvertible {
    let description: String
}
