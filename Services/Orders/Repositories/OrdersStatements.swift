import Foundation
import PostboxBus
import PostboxContracts
import PostgresNIO

/// The statements on the order flow's hot path, prepared once per connection: sent unnamed, PostgreSQL parses and
/// plans them on every call, which took as long as running them.
/// Each keeps its name, the type's as PostgresNIO would give it, in a constant: PostgresNIO's default computes the
/// name again at every execution.
enum OrdersStatements {
    /// The customer a bearer token belongs to.
    struct CustomerByToken: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
        static let sql = "SELECT id FROM orders.customers WHERE token = $1"
        typealias Row = UUID

        var token: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(token)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> UUID { try row.decode(UUID.self) }
    }

    /// The customer's cart with one row per item priced from the catalogue (-1 when the product left it); one row
    /// with null item columns for an empty cart.
    struct Cart: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
        static let sql = """
            SELECT c.status, i.sku, i.quantity, coalesce(p.price_cents, -1)
            FROM orders.carts c
            LEFT JOIN orders.cart_items i ON i.cart_id = c.id
            LEFT JOIN orders.catalogue p ON p.sku = i.sku
            WHERE c.id = $1 AND c.customer_id = $2
            ORDER BY i.sku
            """
        typealias Row = (status: String, sku: String?, quantity: Int?, priceCents: Int)

        var cartId: UUID
        var customerId: UUID

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(cartId)
            bindings.append(customerId)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode((String, String?, Int?, Int).self) }
    }

    /// ``Cart`` with the cart row locked.
    struct LockedCart: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
        static let sql = Cart.sql + "\nFOR UPDATE OF c"
        typealias Row = Cart.Row

        var cart: Cart

        func makeBindings() throws -> PostgresBindings { try cart.makeBindings() }
        func decodeRow(_ row: PostgresRow) throws -> Row { try cart.decodeRow(row) }
    }

    /// Locks the customer's cart and, if it is open, holds items and every item is in the catalogue, stores a
    /// pending order of them at catalogue prices, closes the cart and publishes its `order.placed`: one statement
    /// (one round trip, committing on its own) where a checkout sent BEGIN, a locking read, an insert, a publish
    /// and COMMIT. Returns the cart as it read it (its status, then one row per item, as ``Cart``), each row with
    /// the new order's total, null when nothing was placed; no row when the customer has no such cart.
    ///
    /// The event's body is built here from the rows the statement read, by `bus.publish_v1` (docs/bus.md,
    /// "Publishing from SQL"), as ``OrderPlaced`` encodes it; `checkoutPublishesWhatTheOrderHolds` decodes it.
    struct PlaceOrder: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
        static let sql = """
            WITH cart AS (
                SELECT id, status FROM orders.carts WHERE id = $2 AND customer_id = $3 FOR UPDATE),
            items AS (
                SELECT i.sku, i.quantity, p.price_cents
                FROM cart JOIN orders.cart_items i ON i.cart_id = cart.id
                LEFT JOIN orders.catalogue p ON p.sku = i.sku),
            placeable AS (
                SELECT sum(quantity * price_cents)::bigint AS total FROM items
                WHERE (SELECT status FROM cart) = 'open'
                HAVING count(*) > 0 AND count(*) = count(price_cents)),
            o AS (
                INSERT INTO orders.orders (id, customer_id, cart_id, idempotency_key, status, total_cents, trace_id)
                SELECT $1, $3, $2, $4, 'pending', total, $5 FROM placeable RETURNING total_cents),
            l AS (
                INSERT INTO orders.order_lines (order_id, sku, quantity, price_cents)
                SELECT $1, sku, quantity, price_cents FROM items WHERE EXISTS (SELECT 1 FROM placeable)),
            closed AS (
                UPDATE orders.carts SET status = 'checked_out' WHERE id = $2 AND EXISTS (SELECT 1 FROM placeable)),
            published AS (
                SELECT bus.publish_v1(
                    $6, '\(OrderPlaced.eventType)', \(OrderPlaced.eventVersion), now(), $7, NULL, $8, upper($1::text),
                    jsonb_build_object(
                        'orderId', $1::uuid, 'customerId', $3::uuid,
                        'lines', (SELECT jsonb_agg(
                                jsonb_build_object('sku', sku, 'quantity', quantity, 'priceCents', price_cents)
                                ORDER BY sku)
                            FROM items),
                        'totalCents', o.total_cents, 'paymentToken', $9::text)) AS new
                FROM o)
            SELECT cart.status, i.sku, i.quantity, coalesce(i.price_cents, -1), (SELECT total_cents FROM o),
                (SELECT count(*) FROM published WHERE new)::int
            FROM cart LEFT JOIN items i ON true
            ORDER BY i.sku
            """
        typealias Row = (status: String, sku: String?, quantity: Int?, priceCents: Int, totalCents: Int?, published: Int)

        var orderId: UUID
        var cartId: UUID
        var customerId: UUID
        var idempotencyKey: String?
        var traceId: String
        /// The `order.placed` event's id, correlation id and trace context.
        var eventId: UUID
        var correlationId: String
        var traceparent: String
        var paymentToken: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 9)
            bindings.append(orderId)
            bindings.append(cartId)
            bindings.append(customerId)
            bindings.append(idempotencyKey)
            bindings.append(traceId)
            bindings.append(eventId)
            bindings.append(correlationId)
            bindings.append(traceparent)
            bindings.append(paymentToken)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode((String, String?, Int?, Int, Int?, Int).self) }
    }

    /// Moves an order to a status if it is in one of `from`, and acknowledges the event that asked for it; returns
    /// how many it moved (0 or 1) and the acknowledgement's result.
    struct TransitionOrder: PostgresPreparedStatement {
        static let name = String(reflecting: Self.self)
        static let sql = """
            WITH moved AS (
                UPDATE orders.orders SET status = $1, reason = $2, updated_at = now()
                WHERE id = $3 AND status = ANY($4::text[]) RETURNING 1)
            SELECT (SELECT count(*) FROM moved)::int, \(StatementAcknowledgement.call(firstParameter: 5))
            """
        typealias Row = (moved: Int, acknowledgement: String)

        var orderId: UUID
        var from: [String]
        var status: String
        var reason: String?
        var acknowledgement: StatementAcknowledgement

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4 + StatementAcknowledgement.parameterCount)
            bindings.append(status)
            bindings.append(reason)
            bindings.append(orderId)
            bindings.append(from)
            acknowledgement.appendBindings(to: &bindings)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode((Int, String).self) }
    }
}
