import Foundation
import PostboxBus
import PostboxContracts
import PostboxHarness
import PostgresNIO

/// The order flow itself: the happy path, the business outcomes, cancellation, races.
enum FlowScenarios {
    static let all: [Scenario] = [happyPath, outOfStock, declined, cancellation, lastItemRace, priceChangeRacingCheckout]

    static let happyPath = Scenario(
        "happy-path",
        story: """
            A customer is created, fills a cart with two mugs and checks out; inventory reserves them, payments charges \
            the card processor with the order id as idempotency key, and the order is confirmed. Every service's data \
            agrees: the order is confirmed with its total, the stock is taken, one payment is captured, the processor's \
            ledger has one charge of the total, and the client's trace id is on every event and in the ledger.
            """,
        checks: ["202 with status pending", "confirmed", "stock 10 → 8", "one captured payment and one charge of 25.00", "trace id everywhere"]
    ) { context in
        try await context.standardSystem()
        let customer = try await context.shop.customer()
        let cart = try await context.shop.cart(for: customer, items: [("mug", 2)])
        let trace = "0af7651916cd43dd8448eb211c80319c"
        let answer = try await context.shop.checkout(
            cart,
            customer: customer,
            idempotencyKey: "happy-1",
            traceparent: "00-\(trace)-b7ad6b7169203331-01"
        )
        try context.expect(answer.status == 202, "checkout answered \(answer.status): \(answer.text)")
        try context.expect(answer.header("X-Trace-Id") == trace, "the response carries the trace id")
        struct Accepted: Decodable {
            var orderId: UUID
            var status: String
        }
        let accepted = try answer.decode(Accepted.self)
        try context.expect(accepted.status == "pending", "accepted as \(accepted.status)")
        try await context.shop.waitFor(accepted.orderId, customer: customer, status: "confirmed")
        let order = try await context.shop.order(accepted.orderId, customer: customer)
        try context.expect(order.totalCents == 2500, "total \(order.totalCents)")
        try await context.expectStock((8, 0), "stock taken")
        let payment = try await context.system.scalar(
            "SELECT status || ' ' || amount_cents FROM payments.payments WHERE order_id = \(accepted.orderId)",
            as: String.self
        )
        try context.expect(payment == "captured 2500", "payment \(payment ?? "none")")
        let ledgerTrace = try await context.system.scalar(
            "SELECT trace_id FROM payment_gateway.charges WHERE reference = \(accepted.orderId.uuidString)",
            as: String.self
        )
        try context.expect(ledgerTrace == trace, "ledger trace \(ledgerTrace ?? "none")")
    }

    static let outOfStock = Scenario(
        "out-of-stock",
        story: """
            A customer orders three mugs when two are left. Inventory reserves all lines or none, so it rejects the \
            order; payments never charges; the order ends rejected with a reason that names the SKU.
            """,
        checks: ["rejected with 'out of stock: mug'", "no payment, no charge", "stock untouched"]
    ) { context in
        try await context.standardSystem(stock: 2)
        let (id, customer) = try await context.order(quantity: 3, expecting: "rejected")
        let order = try await context.shop.order(id, customer: customer)
        try context.expect(order.reason?.contains("out of stock: mug") == true, "reason \(order.reason ?? "none")")
        try context.expect(try await context.charges(for: id) == 0, "no charge")
        try await context.expectStock((2, 0), "stock untouched")
    }

    static let declined = Scenario(
        "payment-declined",
        story: """
            The card is declined (token tok_decline). Payments records the decline and publishes payment.failed; \
            inventory releases the reservation and orders cancels the order with the reason. The processor's ledger \
            shows the declined charge and no money moved.
            """,
        checks: ["cancelled with 'payment failed: declined'", "stock released", "ledger: one declined charge"]
    ) { context in
        try await context.standardSystem()
        let (id, customer) = try await context.order(quantity: 2, paymentToken: "tok_decline", expecting: "cancelled")
        let order = try await context.shop.order(id, customer: customer)
        try context.expect(order.reason == "payment failed: declined", "reason \(order.reason ?? "none")")
        try await context.expectStock((10, 0), "stock released")
        let status = try await context.system.scalar("SELECT status FROM payment_gateway.charges WHERE reference = \(id.uuidString)", as: String.self)
        try context.expect(status == "declined", "ledger \(status ?? "none")")
    }

    static let cancellation = Scenario(
        "cancellation-with-refund",
        story: """
            A confirmed order is cancelled by its customer: orders publishes order.cancellation-requested, payments \
            refunds through the processor, inventory puts the stock back, and the order ends cancelled. Cancelling \
            twice changes nothing.
            """,
        checks: ["cancelled", "one refund of the total in the ledger", "stock back to 10", "second cancel is a no-op"]
    ) { context in
        try await context.standardSystem()
        let (id, customer) = try await context.order(quantity: 2, expecting: "confirmed")
        try await context.expectStock((8, 0), "stock taken")
        let first = try await context.shop.cancel(id, customer: customer)
        try context.expect(first.status == 202, "cancel answered \(first.status)")
        _ = try await context.shop.cancel(id, customer: customer)
        try await context.shop.waitFor(id, customer: customer, status: "cancelled")
        try await context.expectStock((10, 0), "stock back")
        let refunded = try await context.system.scalar(
            "SELECT coalesce(sum(r.amount_cents), 0)::int FROM payment_gateway.refunds r JOIN payment_gateway.charges c ON c.id = r.charge_id WHERE c.reference = \(id.uuidString)",
            as: Int.self
        )
        try context.expect(refunded == 2500, "refunded \(refunded ?? 0)")
        try context.expect(
            try await context.system.scalar("SELECT count(*)::int FROM bus.events WHERE type = 'order.cancellation-requested'", as: Int.self) == 1,
            "one cancellation request"
        )
    }

    static let lastItemRace = Scenario(
        "last-item-race",
        story: """
            Twenty customers check out the last mug at the same moment, with two instances of every consumer \
            competing. Exactly one order is confirmed and nineteen are rejected: inventory never oversells, and no \
            one is charged for a mug they did not get.
            """,
        faults: ["20 concurrent checkouts", "2 instances of orders, inventory, payments"],
        checks: ["1 confirmed, 19 rejected", "stock 0, nothing reserved", "1 charge"]
    ) { context in
        try await context.standardSystem(instances: 2, stock: 1)
        let shop = context.shop
        var carts: [(UUID, Shop.Customer)] = []
        for _ in 0..<20 {
            let customer = try await shop.customer()
            carts.append((try await shop.cart(for: customer, items: [("mug", 1)]), customer))
        }
        let ids = try await withThrowingTaskGroup(of: (UUID, Shop.Customer).self) { group in
            for (cart, customer) in carts {
                group.addTask {
                    struct Accepted: Decodable { var orderId: UUID }
                    let answer = try await shop.checkout(cart, customer: customer, idempotencyKey: cart.uuidString)
                    return (try answer.decode(Accepted.self).orderId, customer)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await context.system.quiesce()
        var statuses: [String: Int] = [:]
        for (id, customer) in ids { statuses[try await shop.order(id, customer: customer).status, default: 0] += 1 }
        try context.expect(statuses == ["confirmed": 1, "rejected": 19], "outcomes \(statuses)")
        try await context.expectStock((0, 0), "stock")
        try context.expect(try await context.system.scalar("SELECT count(*)::int FROM payment_gateway.charges", as: Int.self) == 1, "one charge")
    }

    static let priceChangeRacingCheckout = Scenario(
        "price-change-racing-checkout",
        story: """
            Inventory changes the mug's price while customers check out. Each order is priced from the catalogue \
            orders holds at checkout (old or new price), and whatever it was, the payment and the processor's charge \
            are exactly the order's total.
            """,
        faults: ["a price change (PUT /products/mug without stock) during 5 concurrent checkouts"],
        checks: ["every total is 1 × old or new price", "payments and ledger match each total"]
    ) { context in
        try await context.standardSystem()
        let shop = context.shop
        var carts: [(UUID, Shop.Customer)] = []
        for _ in 0..<5 {
            let customer = try await shop.customer()
            carts.append((try await shop.cart(for: customer, items: [("mug", 1)]), customer))
        }
        let ids = try await withThrowingTaskGroup(of: (UUID, Shop.Customer)?.self) { group in
            group.addTask {
                try await shop.price("mug", priceCents: 2000)
                return nil
            }
            for (cart, customer) in carts {
                group.addTask {
                    struct Accepted: Decodable { var orderId: UUID }
                    return (try await shop.checkout(cart, customer: customer).decode(Accepted.self).orderId, customer)
                }
            }
            var orders: [(UUID, Shop.Customer)] = []
            for try await pair in group { if let pair { orders.append(pair) } }
            return orders
        }
        try await context.system.quiesce()
        for (id, customer) in ids {
            let order = try await shop.order(id, customer: customer)
            try context.expect([1250, 2000].contains(order.totalCents), "order \(id) total \(order.totalCents)")
            try context.expect(order.status == "confirmed", "order \(id) \(order.status)")
        }
    }
}
