import Foundation
import PostgresNIO

/// The statements on the order flow's hot path, prepared once per connection: sent unnamed, PostgreSQL parses and
/// plans them on every call, which took as long as running them.
enum InventoryStatements {
    /// Locks the products in SKU order and returns what is available of each.
    struct LockAvailability: PostgresPreparedStatement {
        static let sql = """
            SELECT sku, on_hand - reserved FROM inventory.products WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE
            """
        typealias Row = (String, Int)

        var skus: [String]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(skus)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode((String, Int).self) }
    }

    /// Inserts a reservation unless the order has one, and only then adds the quantities to the products'
    /// reserved counts; returns how many reservations it inserted (0 or 1).
    struct InsertReservation: PostgresPreparedStatement {
        static let sql = """
            WITH r AS (
                INSERT INTO inventory.reservations (order_id, status, lines, reason)
                VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT (order_id) DO NOTHING RETURNING 1),
            a AS (
                UPDATE inventory.products p SET reserved = p.reserved + q.quantity, updated_at = now()
                FROM unnest($5::text[], $6::bigint[]) AS q(sku, quantity)
                WHERE p.sku = q.sku AND EXISTS (SELECT 1 FROM r))
            SELECT count(*)::int FROM r
            """
        typealias Row = Int

        var orderId: UUID
        var status: String
        /// The order's lines as JSON.
        var lines: String
        var reason: String?
        var reserving: [String: Int]

        func makeBindings() throws -> PostgresBindings {
            let sorted = reserving.sorted { $0.key < $1.key }
            var bindings = PostgresBindings(capacity: 6)
            bindings.append(orderId)
            bindings.append(status)
            bindings.append(lines)
            bindings.append(reason)
            bindings.append(sorted.map(\.key))
            bindings.append(sorted.map(\.value))
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
    }

    /// Moves a reservation from one status to another and applies its quantities, times two signs, to the
    /// reserved and on-hand counts (products locked in SKU order); returns how many it moved (0 or 1).
    struct Settle: PostgresPreparedStatement {
        static let sql = """
            WITH r AS (
                UPDATE inventory.reservations SET status = $2, updated_at = now()
                WHERE order_id = $1 AND status = $3 RETURNING lines),
            q AS (
                SELECT l.sku, sum(l.quantity)::bigint AS quantity
                FROM r CROSS JOIN jsonb_to_recordset(r.lines) AS l(sku text, quantity bigint) GROUP BY l.sku),
            locked AS (
                SELECT sku FROM inventory.products WHERE sku IN (SELECT sku FROM q) ORDER BY sku FOR UPDATE),
            a AS (
                UPDATE inventory.products p
                SET reserved = p.reserved + $4::bigint * q.quantity, on_hand = p.on_hand + $5::bigint * q.quantity,
                    updated_at = now()
                FROM q WHERE p.sku = q.sku AND p.sku IN (SELECT sku FROM locked))
            SELECT count(*)::int FROM r
            """
        typealias Row = Int

        var orderId: UUID
        var from: String
        var to: String
        var reservedSign: Int
        var onHandSign: Int

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5)
            bindings.append(orderId)
            bindings.append(to)
            bindings.append(from)
            bindings.append(reservedSign)
            bindings.append(onHandSign)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
    }
}
