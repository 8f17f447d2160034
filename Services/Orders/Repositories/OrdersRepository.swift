import Foundation
import Logging
import PostboxBus
import PostboxContracts
import PostgresNIO

/// The SQL of the orders service; every method runs on the caller's connection (its transaction).
struct OrdersRepository: Sendable {
    func createCustomer(name: String?, on connection: PostgresConnection, logger: Logger) async throws -> (id: UUID, token: String) {
        let id = UUID()
        let token = "cus_" + (0..<32).map { _ in String(UInt8.random(in: 0...15), radix: 16) }.joined()
        try await connection.query(
            "INSERT INTO orders.customers (id, name, token) VALUES (\(id), \(name), \(token))",
            logger: logger
        )
        return (id, token)
    }

    func customer(token: String, on connection: PostgresConnection, logger: Logger) async throws -> UUID? {
        var customer: UUID?
        for try await id in try await connection.execute(OrdersStatements.CustomerByToken(token: token), logger: logger) {
            customer = id
        }
        return customer
    }

    func createCart(customerId: UUID, on connection: PostgresConnection, logger: Logger) async throws -> UUID {
        let id = UUID()
        try await connection.query(
            "INSERT INTO orders.carts (id, customer_id, status) VALUES (\(id), \(customerId), 'open')",
            logger: logger
        )
        return id
    }

    /// The customer's cart with its items priced from the catalogue (an item whose product left the catalogue
    /// has price -1), in one statement; `forUpdate` locks the cart row.
    func cart(id: UUID, customerId: UUID, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> CartRecord? {
        let statement = OrdersStatements.Cart(cartId: id, customerId: customerId)
        let rows =
            forUpdate
            ? try await connection.execute(OrdersStatements.LockedCart(cart: statement), logger: logger)
            : try await connection.execute(statement, logger: logger)
        var cart: CartRecord?
        for try await row in rows {
            if cart == nil { cart = CartRecord(id: id, customerId: customerId, status: row.status, items: []) }
            if let sku = row.sku, let quantity = row.quantity {
                cart?.items.append(OrderLine(sku: sku, quantity: quantity, priceCents: row.priceCents))
            }
        }
        return cart
    }

    func catalogueHas(sku: String, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query("SELECT 1 FROM orders.catalogue WHERE sku = \(sku)", logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Adds `quantity` of `sku` to the cart (to what is there already) and returns the new quantity.
    func addItem(cartId: UUID, sku: String, quantity: Int, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query(
            """
            INSERT INTO orders.cart_items (cart_id, sku, quantity) VALUES (\(cartId), \(sku), \(quantity))
            ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = orders.cart_items.quantity + EXCLUDED.quantity
            RETURNING quantity
            """,
            logger: logger
        )
        for try await total in rows.decode(Int.self) { return total }
        throw OrdersRepositoryError("adding a cart item returned no row")
    }

    func orderId(customerId: UUID, idempotencyKey: String, on connection: PostgresConnection, logger: Logger) async throws -> UUID? {
        let rows = try await connection.query(
            "SELECT id FROM orders.orders WHERE customer_id = \(customerId) AND idempotency_key = \(idempotencyKey)",
            logger: logger
        )
        for try await id in rows.decode(UUID.self) { return id }
        return nil
    }

    func orderId(cartId: UUID, on connection: PostgresConnection, logger: Logger) async throws -> UUID? {
        let rows = try await connection.query("SELECT id FROM orders.orders WHERE cart_id = \(cartId)", logger: logger)
        for try await id in rows.decode(UUID.self) { return id }
        return nil
    }

    /// Places an order of the customer's cart and publishes its `order.placed`, in one statement
    /// (``OrdersStatements/PlaceOrder``): the cart as it was read under its lock, and the new order's total if it
    /// was placed (the cart open, not empty, every item priced); nil if the customer has no such cart.
    func placeOrder(
        id: UUID,
        cartId: UUID,
        customerId: UUID,
        idempotencyKey: String?,
        event: PlacedOrderEvent,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (cart: CartRecord, totalCents: Int?)? {
        let statement = OrdersStatements.PlaceOrder(
            orderId: id,
            cartId: cartId,
            customerId: customerId,
            idempotencyKey: idempotencyKey,
            traceId: event.traceId,
            eventId: event.id,
            correlationId: event.correlationId,
            traceparent: event.traceparent,
            paymentToken: event.paymentToken
        )
        var placed: (cart: CartRecord, totalCents: Int?)?
        var published = 0
        for try await row in try await connection.execute(statement, logger: logger) {
            if placed == nil {
                placed = (CartRecord(id: cartId, customerId: customerId, status: row.status, items: []), row.totalCents)
                published = row.published
            }
            if let sku = row.sku, let quantity = row.quantity {
                placed?.cart.items.append(OrderLine(sku: sku, quantity: quantity, priceCents: row.priceCents))
            }
        }
        if placed?.totalCents != nil && published != 1 {
            throw OrdersRepositoryError("order \(id) was placed but its event \(event.id) was not published")
        }
        return placed
    }

    /// The order with its lines; with `customerId`, only if it is that customer's.
    func order(id: UUID, customerId: UUID?, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> OrderRecord? {
        let lock = forUpdate ? " FOR UPDATE" : ""
        let rows = try await connection.query(
            """
            SELECT customer_id, status, reason, total_cents, cancel_requested_at IS NOT NULL
            FROM orders.orders WHERE id = \(id)\(unescaped: lock)
            """,
            logger: logger
        )
        var found: OrderRecord?
        for try await (customer, status, reason, total, cancelling) in rows.decode((UUID, String, String?, Int, Bool).self) {
            found = OrderRecord(
                id: id,
                customerId: customer,
                status: status,
                reason: reason,
                totalCents: total,
                cancellationRequested: cancelling,
                lines: []
            )
        }
        guard var order = found, customerId == nil || customerId == order.customerId else { return nil }
        let lines = try await connection.query(
            "SELECT sku, quantity, price_cents FROM orders.order_lines WHERE order_id = \(id) ORDER BY sku",
            logger: logger
        )
        for try await (sku, quantity, price) in lines.decode((String, Int, Int).self) {
            order.lines.append(OrderLine(sku: sku, quantity: quantity, priceCents: price))
        }
        return order
    }

    /// Moves the order to `status` if it is in one of `from`, in one statement that also makes `acknowledgement`;
    /// false when it was not (a duplicate or late event).
    func transition(
        orderId: UUID,
        from: [String],
        to status: String,
        reason: String?,
        acknowledging acknowledgement: StatementAcknowledgement,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Bool {
        let statement = OrdersStatements.TransitionOrder(
            orderId: orderId,
            from: from,
            status: status,
            reason: reason,
            acknowledgement: acknowledgement
        )
        var moved = false
        for try await row in try await connection.execute(statement, logger: logger) {
            moved = row.moved == 1
            try acknowledgement.recordResult(row.acknowledgement)
        }
        return moved
    }

    func markCancellationRequested(orderId: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "UPDATE orders.orders SET cancel_requested_at = now(), updated_at = now() WHERE id = \(orderId)",
            logger: logger
        )
    }

    /// Keeps the newest revision of a product in the catalogue.
    func upsertCatalogue(_ product: ProductUpserted, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO orders.catalogue (sku, name, price_cents, revision)
            VALUES (\(product.sku), \(product.name), \(product.priceCents), \(product.revision))
            ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents,
                revision = EXCLUDED.revision, updated_at = now()
            WHERE orders.catalogue.revision < EXCLUDED.revision
            """,
            logger: logger
        )
    }
}

/// A query that did not return what it must.
struct OrdersRepositoryError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
