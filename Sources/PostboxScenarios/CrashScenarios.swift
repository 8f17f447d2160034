import Foundation
import PostboxHarness
import PostboxService
import PostgresNIO

/// Processes die: SIGKILL mid-flow, named crash points at the worst moments, a consumer frozen past its lease.
enum CrashScenarios {
    static let all: [Scenario] = [
        kill("orders"), kill("inventory"), kill("payments"),
        paymentsCrashAfterCharge, inventoryCrashAfterReserve, ordersCrashAfterCommit, paymentsCrashAfterRefund,
        pausedPastLease,
    ]

    /// SIGKILL of `label` while orders are in flight, then a restart.
    static func kill(_ label: String) -> Scenario {
        Scenario(
            "kill-\(label)-mid-flow",
            story: """
                Three orders are in flight when \(label) is killed with SIGKILL (no shutdown code runs). Whatever it had \
                claimed is released when its lease runs out; once restarted it, or the bus, finishes the work. Every \
                order is confirmed, charged once, with its stock taken once.
                """,
            faults: ["SIGKILL \(label) right after three checkouts", "processor answers after 300 ms, so payments is mid-call"],
            checks: ["3 confirmed", "one charge each"]
        ) { context in
            try await context.standardSystem()
            try await context.shop.gatewayFaults(#"{"kind":"delay","delayMs":300}"#)
            var placed: [(UUID, Shop.Customer)] = []
            for _ in 0..<3 { placed.append(try await context.shop.placeOrder(sku: "mug")) }
            try await context.system.kill(label)
            try await context.system.restart(label)
            for (id, customer) in placed {
                try await context.shop.waitFor(id, customer: customer, status: "confirmed")
                try context.expect(try await context.charges(for: id) == 1, "one charge for \(id)")
            }
        }
    }

    static let paymentsCrashAfterCharge = Scenario(
        "payments-crash-after-charge",
        story: """
            Payments dies at crash point payments.after-charge-before-commit: the processor has charged the card, but \
            payments never stored the payment nor acknowledged stock.reserved. After the restart the event is \
            delivered again, payments charges with the same idempotency key, the processor replays the charge, and \
            the order is confirmed — charged once, not twice.
            """,
        faults: ["crash point payments.after-charge-before-commit", "restart"],
        checks: ["payments exits 86", "one charge in the ledger before and after", "confirmed"]
    ) { context in
        try await context.standardSystem(environment: [.payments: [CrashPoint.variable: "payments.after-charge-before-commit"]])
        let (id, customer) = try await context.shop.placeOrder(sku: "mug")
        try await context.waitForExit("payments", code: CrashPoint.exitStatus)
        try context.expect(try await context.charges(for: id) == 1, "charged before the crash")
        try context.expect(
            try await context.system.scalar("SELECT count(*)::int FROM payments.payments", as: Int.self) == 0,
            "nothing stored"
        )
        try await context.system.restart("payments")
        try await context.shop.waitFor(id, customer: customer, status: "confirmed")
        try context.expect(try await context.charges(for: id) == 1, "still one charge")
    }

    static let inventoryCrashAfterReserve = Scenario(
        "inventory-crash-after-reserve",
        story: """
            Inventory dies at crash point inventory.after-reserve-commit, right after the one statement that reserved \
            the stock, published stock.reserved and acknowledged order.placed committed. The three survive together: \
            payments charges without inventory, order.placed is not handled again after the restart, and the stock \
            is taken once.
            """,
        faults: ["crash point inventory.after-reserve-commit", "restart"],
        checks: [
            "inventory exits 86", "reserved, published and acknowledged together", "confirmed", "stock taken once",
        ]
    ) { context in
        try await context.standardSystem(environment: [.inventory: [CrashPoint.variable: "inventory.after-reserve-commit"]])
        let (id, customer) = try await context.shop.placeOrder(sku: "mug", quantity: 2)
        try await context.waitForExit("inventory", code: CrashPoint.exitStatus)
        try context.expect(
            try await context.system.scalar("SELECT reserved::int FROM inventory.products WHERE sku = 'mug'", as: Int.self) == 2,
            "the reservation survived the crash"
        )
        try context.expect(
            try await context.system.scalar("SELECT count(*)::int FROM bus.events WHERE type = 'stock.reserved'", as: Int.self) == 1,
            "stock.reserved was published once"
        )
        try context.expect(
            try await context.system.scalar(
                "SELECT count(*)::int FROM bus.handled h JOIN bus.events e ON e.id = h.event_id WHERE h.subscription = 'inventory' AND e.type = 'order.placed'",
                as: Int.self
            ) == 1,
            "order.placed was acknowledged with the reservation"
        )
        try await context.system.restart("inventory")
        try await context.shop.waitFor(id, customer: customer, status: "confirmed")
        try await context.expectStock((8, 0), "stock taken once")
        try context.expect(
            try await context.system.scalar("SELECT count(*)::int FROM bus.events WHERE type = 'stock.reserved'", as: Int.self) == 1,
            "order.placed was not handled again"
        )
    }

    static let ordersCrashAfterCommit = Scenario(
        "orders-crash-after-commit",
        story: """
            Orders dies at crash point orders.after-commit-before-response: the order and order.placed are committed \
            but the customer gets no answer. The customer retries the checkout with the same Idempotency-Key after \
            the restart and gets the same order back; there is one order, and it is confirmed.
            """,
        faults: ["crash point orders.after-commit-before-response", "restart"],
        checks: ["the first checkout gets no answer", "the retry returns the same order id", "one order", "confirmed"]
    ) { context in
        try await context.standardSystem(environment: [.orders: [CrashPoint.variable: "orders.after-commit-before-response"]])
        let customer = try await context.shop.customer()
        let cart = try await context.shop.cart(for: customer, items: [("mug", 1)])
        let first = try? await context.shop.checkout(cart, customer: customer, idempotencyKey: "retry-me")
        try context.expect(first == nil, "the first checkout got an answer: \(first?.status ?? 0)")
        try await context.waitForExit("orders", code: CrashPoint.exitStatus)
        try await context.system.restart("orders")
        struct Accepted: Decodable { var orderId: UUID }
        let retried = try await context.shop.checkout(cart, customer: customer, idempotencyKey: "retry-me")
        try context.expect(retried.status == 202, "retry answered \(retried.status): \(retried.text)")
        let id = try retried.decode(Accepted.self).orderId
        try context.expect(try await context.system.scalar("SELECT count(*)::int FROM orders.orders", as: Int.self) == 1, "one order")
        try await context.shop.waitFor(id, customer: customer, status: "confirmed")
    }

    static let paymentsCrashAfterRefund = Scenario(
        "payments-crash-after-refund",
        story: """
            A confirmed order is cancelled and payments dies at crash point payments.after-refund-before-commit: the \
            processor refunded, payments stored nothing. After the restart the cancellation request is delivered \
            again; the refund key makes the processor replay the refund. The order ends cancelled, refunded once.
            """,
        faults: ["crash point payments.after-refund-before-commit", "restart"],
        checks: ["payments exits 86", "one refund", "cancelled", "stock back"]
    ) { context in
        try await context.standardSystem(environment: [.payments: [CrashPoint.variable: "payments.after-refund-before-commit"]])
        let (id, customer) = try await context.order(expecting: "confirmed")
        _ = try await context.shop.cancel(id, customer: customer)
        try await context.waitForExit("payments", code: CrashPoint.exitStatus)
        try await context.system.restart("payments")
        try await context.shop.waitFor(id, customer: customer, status: "cancelled")
        let refunds = try await context.system.scalar("SELECT count(*)::int FROM payment_gateway.refunds", as: Int.self)
        try context.expect(refunds == 1, "refunds \(refunds ?? 0)")
        try await context.expectStock((10, 0), "stock back")
    }

    static let pausedPastLease = Scenario(
        "payments-paused-past-lease",
        story: """
            Payments freezes (SIGSTOP) in the middle of a charge and stays frozen past its 5 s lease. A second \
            payments instance takes the delivery over and completes the payment. When the first one wakes up \
            (SIGCONT), its late acknowledgement matches no lease and changes nothing: one payment, one charge.
            """,
        faults: ["processor: one charge delayed 1.5 s", "SIGSTOP payments during it", "start payments-2", "SIGCONT after the takeover"],
        checks: ["confirmed by payments-2", "one payment, one charge", "the stale instance's work has no effect"]
    ) { context in
        try await context.standardSystem()
        try await context.shop.gatewayFaults(#"{"kind":"delay","delayMs":1500,"count":1,"endpoint":"charges"}"#)
        let (id, customer) = try await context.shop.placeOrder(sku: "mug")
        let gateway = context.system.process("payment-gateway")!
        try await eventually("the charge to reach the processor") {
            gateway.lines.contains { $0.text.contains("fault injected") }
        }
        try context.system.pause("payments")
        try await context.system.start(.payments, instance: 2)
        try await context.shop.waitFor(id, customer: customer, status: "confirmed", timeout: .seconds(30))
        let handledBy = try await context.system.scalar(
            "SELECT h.handled_by FROM bus.handled h JOIN bus.events e ON e.id = h.event_id WHERE h.subscription = 'payments' AND e.type = 'stock.reserved'",
            as: String.self
        )
        try context.expect(handledBy == "payments-2", "handled by \(handledBy ?? "nobody")")
        try context.system.resume("payments")
        try await context.system.quiesce()
        try context.expect(try await context.charges(for: id) == 1, "one charge")
        try context.expect(try await context.system.scalar("SELECT count(*)::int FROM payments.payments", as: Int.self) == 1, "one payment")
    }
}
