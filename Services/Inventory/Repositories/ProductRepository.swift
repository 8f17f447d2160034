import Foundation
import Logging
import PostboxBus
import PostboxContracts
import PostgresNIO

/// A product as inventory stores it.
struct Product: Sendable, Equatable {
    var sku: String
    var name: String
    var priceCents: Int
    var onHand: Int
    var reserved: Int
    var revision: Int64

    var available: Int { onHand - reserved }
}

/// The SQL for products and reservations; every method runs on the caller's connection (its transaction).
struct ProductRepository: Sendable {
    /// Creates or updates a product and returns it with whether it was created; a nil `stock` keeps the stock
    /// on hand. Stock lower than what is reserved fails with ``StockBelowReserved``; a new product without stock
    /// with ``StockRequired``.
    func upsert(
        sku: String,
        name: String,
        priceCents: Int,
        stock: Int?,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (product: Product, created: Bool) {
        let current = try await product(sku: sku, forUpdate: true, on: connection, logger: logger)
        guard let stock = stock ?? current?.onHand else { throw StockRequired() }
        if let current, stock < current.reserved {
            throw StockBelowReserved(sku: sku, reserved: current.reserved, requested: stock)
        }
        let rows = try await connection.query(
            """
            INSERT INTO inventory.products (sku, name, price_cents, on_hand) VALUES (\(sku), \(name), \(priceCents), \(stock))
            ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents,
                on_hand = EXCLUDED.on_hand, revision = inventory.products.revision + 1, updated_at = now()
            RETURNING sku, name, price_cents, on_hand, reserved, revision
            """,
            logger: logger
        )
        for try await row in rows.decode((String, String, Int, Int, Int, Int64).self) {
            return (Product(sku: row.0, name: row.1, priceCents: row.2, onHand: row.3, reserved: row.4, revision: row.5), current == nil)
        }
        throw RepositoryError("upsert returned no row")
    }

    /// The product with this SKU, if any.
    func product(sku: String, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> Product? {
        let lock = forUpdate ? " FOR UPDATE" : ""
        let rows = try await connection.query(
            "SELECT sku, name, price_cents, on_hand, reserved, revision FROM inventory.products WHERE sku = \(sku)\(unescaped: lock)",
            logger: logger
        )
        for try await row in rows.decode((String, String, Int, Int, Int, Int64).self) {
            return Product(sku: row.0, name: row.1, priceCents: row.2, onHand: row.3, reserved: row.4, revision: row.5)
        }
        return nil
    }

    /// Records the order's reservation, publishes its outcome and makes `acknowledgement`, in one statement
    /// (``InventoryStatements/ReserveAndAcknowledge``): reserved, adding `wanted` (quantities by SKU) to the
    /// products' reserved counts and publishing `reserved`, if every product has enough available; rejected with
    /// the shortages, in SKU order, as its reason otherwise, publishing `stock.rejected`. Nil, changing and
    /// publishing nothing, if the order already has a reservation (a duplicate event).
    func reserve(
        orderId: UUID,
        lines: [OrderLine],
        wanted: [String: Int],
        publishing reserved: EventEnvelope,
        acknowledging acknowledgement: StatementAcknowledgement,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> ReservationOutcome? {
        let statement = InventoryStatements.ReserveAndAcknowledge(
            orderId: orderId,
            wanted: wanted.sorted { $0.key < $1.key }.map { (sku: $0.key, quantity: $0.value) },
            lines: String(decoding: try JSONEncoder().encode(lines), as: UTF8.self),
            reserved: reserved,
            acknowledgement: acknowledgement
        )
        // The event's id is new (time-ordered, made for this reservation), so a new reservation always publishes.
        var outcome: ReservationOutcome?
        for try await row in try await connection.execute(statement, logger: logger) {
            try acknowledgement.recordResult(row.acknowledgement)
            switch (row.status, row.reason) {
            case (nil, _): outcome = nil
            case ("reserved", _): outcome = .reserved
            case ("rejected", let reason?): outcome = .rejected(reason: reason)
            case (let status?, let reason):
                throw RepositoryError("reservation recorded as \(status) with reason \(reason ?? "none")")
            }
        }
        return outcome
    }

    /// Moves the order's reservation from `from` to `to` and adds its quantities, times the signs given, to the
    /// reserved and on-hand counts of its products, in one statement that also makes `acknowledgement`; false,
    /// changing nothing, if the reservation was not in `from` (a duplicate or late event). The products are
    /// locked in SKU order, so two settlements cannot deadlock.
    func settle(
        orderId: UUID,
        from: String,
        to: String,
        reserved reservedSign: Int,
        onHand onHandSign: Int,
        acknowledging acknowledgement: StatementAcknowledgement,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Bool {
        let statement = InventoryStatements.Settle(
            orderId: orderId,
            from: from,
            to: to,
            reservedSign: reservedSign,
            onHandSign: onHandSign,
            acknowledgement: acknowledgement
        )
        var settled = 0
        for try await row in try await connection.execute(statement, logger: logger) {
            settled = row.settled
            try acknowledgement.recordResult(row.acknowledgement)
        }
        return settled == 1
    }
}

/// What a new reservation became.
enum ReservationOutcome: Sendable, Equatable {
    /// Every line's stock is held for the order.
    case reserved
    /// Nothing is held; `reason` lists each shortage ("out of stock: SKU-1: 3 wanted, 1 available; …").
    case rejected(reason: String)
}

/// A stock level below what is reserved for orders in flight.
struct StockBelowReserved: Error {
    let sku: String
    let reserved: Int
    let requested: Int
}

/// A new product needs its stock.
struct StockRequired: Error {}

/// A query that did not return what it must.
struct RepositoryError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension [OrderLine] {
    /// Quantities per SKU, adding up lines of the same SKU.
    var quantitiesBySKU: [String: Int] {
        reduce(into: [:]) { $0[$1.sku, default: 0] += $1.quantity }
    }
}
