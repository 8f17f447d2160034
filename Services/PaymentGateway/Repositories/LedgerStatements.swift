import Foundation
import PostgresNIO

/// The statement every charge runs, prepared once per connection: sent unnamed, PostgreSQL parses and plans it on
/// every call, which took as long as running it.
/// It keeps its name, the type's as PostgresNIO would give it, in a constant: PostgresNIO's default computes the
/// name again at every execution.
enum LedgerStatements {
    /// Inserts a charge unless its idempotency key was used; a row when it inserted.
    struct InsertCharge: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
        static let sql = """
            INSERT INTO payment_gateway.charges (id, idempotency_key, reference, amount_cents, token, status, trace_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1
            """
        typealias Row = Int

        var charge: Charge
        var idempotencyKey: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 7)
            bindings.append(charge.id)
            bindings.append(idempotencyKey)
            bindings.append(charge.reference)
            bindings.append(charge.amountCents)
            bindings.append(charge.token)
            bindings.append(charge.status)
            bindings.append(charge.traceId)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
    }
}
