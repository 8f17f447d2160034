import Foundation
import PostboxBus
import PostboxContracts
import PostboxHarness
import PostgresNIO

/// Part of the system, with scripted stand-ins on the bus for the rest (incremental integration).
enum IncrementalScenarios {
    static let all: [Scenario] = [inventoryAlone, ordersWithScriptedPayments]

    static let inventoryAlone = Scenario(
        "inventory-alone-scripted-orders",
        story: """
            Bottom-up: inventory runs alone. The harness plays orders and payments by publishing order.placed, \
            payment.captured and payment.failed directly on the bus, and reads what inventory publishes back: \
            stock.reserved for what fits, stock.rejected (all lines or none) for what does not, stock taken on \
            capture and released on failure.
            """,
        faults: ["only inventory runs", "scripted order.placed / payment.* events"],
        checks: ["stock.reserved for A, stock.rejected for B", "captured takes stock; failed releases it"],
        checksInvariants: false
    ) { context in
        try await context.system.start(.inventory)
        try await context.shop.product("mug", priceCents: 1250, stock: 5)
        try await context.shop.product("lamp", priceCents: 4000, stock: 1)
        // Listen as orders would, so inventory's answers are kept for us.
        try await context.system.withBus {
            try await $0.register(Subscription(name: "scripted-orders", topics: [StockReserved.eventType, StockRejected.eventType]))
        }
        let fits = UUID()
        let tooMany = UUID()
        let failing = UUID()
        func placed(_ id: UUID, _ lines: [OrderLine]) throws -> EventEnvelope {
            try EventEnvelope(
                OrderPlaced(orderId: id, customerId: UUID(), lines: lines, totalCents: 0, paymentToken: "tok"),
                orderingKey: id.uuidString
            )
        }
        try await context.system.publish([
            try placed(fits, [.init(sku: "mug", quantity: 2, priceCents: 1250)]),
            try placed(tooMany, [.init(sku: "mug", quantity: 1, priceCents: 1250), .init(sku: "lamp", quantity: 2, priceCents: 4000)]),
            try placed(failing, [.init(sku: "mug", quantity: 1, priceCents: 1250)]),
        ])
        try await eventually("inventory's answers") {
            try await context.system.scalar("SELECT count(*)::int FROM bus.events WHERE type LIKE 'stock.%'", as: Int.self) == 3
        }
        let rejected = try await context.system.scalar("SELECT payload->>'orderId' FROM bus.events WHERE type = 'stock.rejected'", as: String.self)
        try context.expect(rejected?.lowercased() == tooMany.uuidString.lowercased(), "rejected \(rejected ?? "none")")
        try context.expect(try await context.stock("mug") == (5, 3), "mug reserved 3")
        try context.expect(try await context.stock("lamp") == (1, 0), "lamp untouched (all or none)")
        try await context.system.publish([
            try EventEnvelope(
                PaymentCaptured(orderId: fits, paymentId: UUID(), amountCents: 2500, chargeId: "ch_script"),
                orderingKey: fits.uuidString
            ),
            try EventEnvelope(PaymentFailed(orderId: failing, reason: "declined"), orderingKey: failing.uuidString),
        ])
        try await eventually("captured taken and failed released") { try await context.stock("mug") == (3, 0) }
    }

    static let ordersWithScriptedPayments = Scenario(
        "orders-with-scripted-payments",
        story: """
            Top-down: orders and inventory run; payments is replaced by a scripted stand-in on the bus that captures \
            every reservation at once (no card processor). A checkout is confirmed through the real orders and \
            inventory, with the stand-in's payment.captured.
            """,
        faults: ["payments and the card processor replaced by a scripted consumer"],
        checks: ["confirmed", "stock taken", "the stand-in handled stock.reserved once"],
        checksInvariants: false
    ) { context in
        try await context.system.start(.inventory)
        try await context.system.start(.orders)
        try await context.system.standIn(Subscription(name: "payments", topics: [StockReserved.eventType])) { event, transaction in
            let reserved = try event.decode(StockReserved.self)
            try await transaction.publish(
                event.envelope.causing(
                    PaymentCaptured(orderId: reserved.orderId, paymentId: UUID(), amountCents: 0, chargeId: "scripted"),
                    orderingKey: reserved.orderId.uuidString
                )
            )
        }
        try await context.shop.product("mug", priceCents: 1250, stock: 10)
        try await context.order(quantity: 3, expecting: "confirmed")
        try await context.expectStock((7, 0), "stock taken")
        try context.expect(try await context.system.handledCount("payments", type: StockReserved.eventType) == 1, "the stand-in handled it once")
    }
}
