import Foundation
import PostboxBus
import PostboxContracts
import PostgresNIO

/// The statements on the order flow's hot path, prepared once per connection: sent unnamed, PostgreSQL parses and
/// plans them on every call, which took as long as running them.
/// Each keeps its name, the type's as PostgresNIO would give it, in a constant: PostgresNIO's default computes the
/// name again at every execution.
enum InventoryStatements {
    /// Locks the order's products in SKU order (so concurrent reservations cannot deadlock) and, unless the order
    /// already has a reservation, records one: `reserved`, adding the quantities to the products' reserved counts,
    /// when every product is known and has enough available; otherwise `rejected`, holding nothing, with each
    /// shortage in the reason in the order the SKUs were given. It publishes what came of it with `bus.publish_v1`
    /// — `stock.reserved` (bound whole from `$5`, as `PublishFunction` binds an envelope) or `stock.rejected` with
    /// that reason — and acknowledges the `order.placed` that asked, all in one statement that commits on its own.
    /// Returns the new reservation's status and reason (null for an order that had one, a duplicate event: nothing
    /// is reserved or published again), how many events it published (reading `published` there is what makes
    /// PostgreSQL run that part) and the acknowledgement's result.
    ///
    /// One statement instead of BEGIN, a locking read, an insert, the publishing acknowledgement and COMMIT: each
    /// of those round trips lay on every order's way to confirmation. Every product row it locks is one that a line
    /// wants, so the join that looks for shortages reads, and locks, each of them before the reservation is
    /// decided.
    struct ReserveAndAcknowledge: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
        static let sql = """
            WITH wanted AS (
                SELECT w.sku, w.quantity, w.position
                FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS w(sku, quantity, position)),
            locked AS (
                SELECT sku, on_hand - reserved AS available FROM inventory.products
                WHERE sku = ANY($2::text[]) ORDER BY sku FOR UPDATE),
            shortages AS (
                SELECT string_agg(
                    CASE WHEN l.sku IS NULL THEN w.sku || ': unknown product'
                        ELSE w.sku || ': ' || w.quantity || ' wanted, ' || l.available || ' available' END,
                    '; ' ORDER BY w.position) AS list
                FROM wanted w LEFT JOIN locked l ON l.sku = w.sku
                WHERE l.sku IS NULL OR l.available < w.quantity),
            r AS (
                INSERT INTO inventory.reservations (order_id, status, lines, reason)
                SELECT $1, CASE WHEN list IS NULL THEN 'reserved' ELSE 'rejected' END, $4::jsonb, 'out of stock: ' || list
                FROM shortages
                ON CONFLICT (order_id) DO NOTHING RETURNING status, reason),
            a AS (
                UPDATE inventory.products p SET reserved = p.reserved + w.quantity, updated_at = now()
                FROM wanted w WHERE p.sku = w.sku AND EXISTS (SELECT 1 FROM r WHERE r.status = 'reserved')),
            published AS (
                SELECT bus.publish_v1(
                    $5::uuid,
                    CASE r.status WHEN 'reserved' THEN $6::text ELSE '\(StockRejected.eventType)' END,
                    CASE r.status WHEN 'reserved' THEN $7::int ELSE \(StockRejected.eventVersion) END,
                    $8::timestamptz, $9::text, $10::uuid, $11::text, $12::text,
                    CASE r.status WHEN 'reserved' THEN $13::jsonb
                        ELSE jsonb_build_object('orderId', upper($1::text), 'reason', r.reason) END) AS new
                FROM r)
            SELECT (SELECT status FROM r), (SELECT reason FROM r), (SELECT count(*) FROM published WHERE new)::int,
                \(StatementAcknowledgement.call(firstParameter: 5 + PublishFunction.parameterCount))
            """
        typealias Row = (status: String?, reason: String?, published: Int, acknowledgement: String)

        var orderId: UUID
        /// Quantities by SKU, in the order shortages are listed.
        var wanted: [(sku: String, quantity: Int)]
        /// The order's lines as JSON.
        var lines: String
        /// `stock.reserved`, as published if the order is reserved; a rejection goes out under its id, time,
        /// correlation, cause, trace and ordering key, with `stock.rejected`'s type, version and a body built in SQL.
        var reserved: EventEnvelope
        var acknowledgement: StatementAcknowledgement

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(
                capacity: 4 + PublishFunction.parameterCount + StatementAcknowledgement.parameterCount
            )
            bindings.append(orderId)
            bindings.append(wanted.map(\.sku))
            bindings.append(wanted.map(\.quantity))
            bindings.append(lines)
            PublishFunction.appendBindings(of: reserved, to: &bindings)
            acknowledgement.appendBindings(to: &bindings)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode((String?, String?, Int, String).self) }
    }

    /// Moves a reservation from one status to another and applies its quantities, times two signs, to the
    /// reserved and on-hand counts (products locked in SKU order), and acknowledges the event that asked for it;
    /// returns how many it moved (0 or 1) and the acknowledgement's result.
    struct Settle: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
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
            SELECT (SELECT count(*) FROM r)::int, \(StatementAcknowledgement.call(firstParameter: 6))
            """
        typealias Row = (settled: Int, acknowledgement: String)

        var orderId: UUID
        var from: String
        var to: String
        var reservedSign: Int
        var onHandSign: Int
        var acknowledgement: StatementAcknowledgement

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5 + StatementAcknowledgement.parameterCount)
            bindings.append(orderId)
            bindings.append(to)
            bindings.append(from)
            bindings.append(reservedSign)
            bindings.append(onHandSign)
            acknowledgement.appendBindings(to: &bindings)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode((Int, String).self) }
    }
}
