import Foundation
import Logging
import PostgresNIO

/// A charge in the processor's ledger.
struct Charge: Codable, Sendable, Equatable {
    var id: String
    var reference: String
    var amountCents: Int
    var token: String
    var status: String
    var refundedCents: Int
    var traceId: String?
}

/// A refund in the processor's ledger.
struct Refund: Codable, Sendable, Equatable {
    var id: String
    var chargeId: String
    var amountCents: Int
    var status: String
}

/// The ledger's SQL; every method runs on the caller's connection (its transaction).
struct LedgerRepository: Sendable {
    static func newId(prefix: String) -> String {
        prefix + "_" + (0..<24).map { _ in String(UInt8.random(in: 0...15), radix: 16) }.joined()
    }

    func charge(idempotencyKey: String, on connection: PostgresConnection, logger: Logger) async throws -> Charge? {
        try await charges(where: "c.idempotency_key = $1", idempotencyKey, on: connection, logger: logger).first
    }

    func charge(id: String, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> Charge? {
        if forUpdate {
            try await connection.query("SELECT 1 FROM payment_gateway.charges WHERE id = \(id) FOR UPDATE", logger: logger)
        }
        return try await charges(where: "c.id = $1", id, on: connection, logger: logger).first
    }

    func charges(reference: String?, on connection: PostgresConnection, logger: Logger) async throws -> [Charge] {
        if let reference {
            return try await charges(where: "c.reference = $1", reference, on: connection, logger: logger)
        }
        return try await charges(where: "$1::text IS NULL", nil, on: connection, logger: logger)
    }

    private func charges(where condition: String, _ value: String?, on connection: PostgresConnection, logger: Logger) async throws -> [Charge] {
        var bindings = PostgresBindings()
        bindings.append(value)
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT c.id, c.reference, c.amount_cents, c.token, c.status,
                    coalesce((SELECT sum(r.amount_cents) FROM payment_gateway.refunds r WHERE r.charge_id = c.id), 0)::bigint,
                    c.trace_id
                FROM payment_gateway.charges c WHERE \(condition) ORDER BY c.created_at, c.id LIMIT 10000
                """,
            binds: bindings
        )
        let rows = try await connection.query(query, logger: logger)
        var result: [Charge] = []
        for try await row in rows.decode((String, String, Int, String, String, Int, String?).self) {
            result.append(
                Charge(id: row.0, reference: row.1, amountCents: row.2, token: row.3, status: row.4, refundedCents: row.5, traceId: row.6)
            )
        }
        return result
    }

    /// Inserts a charge; nil when its idempotency key was used already (after waiting for a request in flight
    /// with the same key to commit).
    func insertCharge(
        _ charge: Charge,
        idempotencyKey: String,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Charge? {
        var inserted = false
        let statement = LedgerStatements.InsertCharge(charge: charge, idempotencyKey: idempotencyKey)
        for try await _ in try await connection.execute(statement, logger: logger) { inserted = true }
        return inserted ? charge : nil
    }

    func refund(idempotencyKey: String, on connection: PostgresConnection, logger: Logger) async throws -> Refund? {
        let rows = try await connection.query(
            "SELECT id, charge_id, amount_cents FROM payment_gateway.refunds WHERE idempotency_key = \(idempotencyKey)",
            logger: logger
        )
        for try await (id, charge, amount) in rows.decode((String, String, Int).self) {
            return Refund(id: id, chargeId: charge, amountCents: amount, status: "refunded")
        }
        return nil
    }

    func insertRefund(
        _ refund: Refund,
        idempotencyKey: String,
        traceId: String?,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO payment_gateway.refunds (id, idempotency_key, charge_id, amount_cents, trace_id)
            VALUES (\(refund.id), \(idempotencyKey), \(refund.chargeId), \(refund.amountCents), \(traceId))
            """,
            logger: logger
        )
    }
}
