import Foundation
import PostboxBus
import PostgresNIO

/// The statements on the order flow's hot path, prepared once per connection: sent unnamed, PostgreSQL parses and
/// plans them on every call, which took as long as running them.
/// Each keeps its name, the type's as PostgresNIO would give it, in a constant: PostgresNIO's default computes the
/// name again at every execution.
enum PaymentsStatements {
    /// Remembers what to charge for an order, once.
    struct RecordIntent: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
        static let sql = """
            INSERT INTO payments.intents (order_id, amount_cents, payment_token) VALUES ($1, $2, $3)
            ON CONFLICT (order_id) DO NOTHING
            """
        typealias Row = ()

        var orderId: UUID
        var amountCents: Int
        var token: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 3)
            bindings.append(orderId)
            bindings.append(amountCents)
            bindings.append(token)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }

    /// Whether the order has a payment, and its intent (null columns until `order.placed` was handled).
    struct ChargeState: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
        static let sql = """
            SELECT EXISTS (SELECT 1 FROM payments.payments WHERE order_id = $1), i.amount_cents, i.payment_token
            FROM (SELECT 1) one LEFT JOIN payments.intents i ON i.order_id = $1
            """
        typealias Row = (Bool, Int?, String?)

        var orderId: UUID

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(orderId)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode((Bool, Int?, String?).self) }
    }

    /// Stores a payment, publishes its event with `bus.publish_v1` and acknowledges the event that asked for it,
    /// in one statement; returns the acknowledgement's result.
    struct InsertPaymentPublishAndAcknowledge: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
        static let sql = """
            WITH p AS (
                INSERT INTO payments.payments (id, order_id, amount_cents, status, charge_id, reason)
                VALUES ($1, $2, $3, $4, $5, $6))
            SELECT \(PublishFunction.call(firstParameter: 7)),
                \(StatementAcknowledgement.call(firstParameter: 7 + PublishFunction.parameterCount))
            """
        typealias Row = (published: Bool, acknowledgement: String)

        var payment: PaymentRecord
        var event: EventEnvelope
        var acknowledgement: StatementAcknowledgement

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 6 + PublishFunction.parameterCount + StatementAcknowledgement.parameterCount)
            bindings.append(payment.id)
            bindings.append(payment.orderId)
            bindings.append(payment.amountCents)
            bindings.append(payment.status)
            bindings.append(payment.chargeId)
            bindings.append(payment.reason)
            PublishFunction.appendBindings(of: event, to: &bindings)
            acknowledgement.appendBindings(to: &bindings)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode((Bool, String).self) }
    }
}
