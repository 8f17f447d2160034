import Foundation
import PostboxHarness
import PostgresNIO

/// The card processor misbehaves: errors, timeouts, lost answers, a long outage, failing refunds.
enum ProcessorScenarios {
    static let all: [Scenario] = [errorsThenSuccess, timeoutThenSuccess, chargedButAnswerLost, downBeyondRetryBudget, refundFailingThenSucceeding]

    static let errorsThenSuccess = Scenario(
        "processor-500-then-success",
        story: """
            The processor answers the first three charge calls with HTTP 500. Payments retries within the delivery \
            with the same idempotency key, then hands the event back to the bus, whose backoff brings it back; the \
            fourth call succeeds. The order is confirmed and charged once.
            """,
        faults: ["processor: HTTP 500 for the next 3 charges"],
        checks: ["confirmed", "one charge"]
    ) { context in
        try await context.standardSystem()
        try await context.shop.gatewayFaults(#"{"kind":"error","status":500,"count":3,"endpoint":"charges"}"#)
        let (id, _) = try await context.order(expecting: "confirmed")
        try context.expect(try await context.charges(for: id) == 1, "one charge")
        let attempts = try await context.system.scalar(
            "SELECT h.attempts FROM bus.handled h JOIN bus.events e ON e.id = h.event_id WHERE h.subscription = 'payments' AND e.type = 'stock.reserved'",
            as: Int.self
        )
        try context.expect((attempts ?? 0) >= 2, "the bus retried the delivery (attempts \(attempts ?? 0))")
    }

    static let timeoutThenSuccess = Scenario(
        "processor-timeout-then-success",
        story: """
            The processor takes 2.5 s to answer one charge, longer than payments waits (1 s in the lab), and makes no \
            charge. Payments treats the timeout as "unavailable" and calls again with the same idempotency key; the \
            order is confirmed with one charge.
            """,
        faults: ["processor: one charge times out after 2.5 s"],
        checks: ["confirmed", "one charge"]
    ) { context in
        try await context.standardSystem()
        try await context.shop.gatewayFaults(#"{"kind":"timeout","delayMs":2500,"count":1,"endpoint":"charges"}"#)
        let (id, _) = try await context.order(expecting: "confirmed")
        try context.expect(try await context.charges(for: id) == 1, "one charge")
    }

    static let chargedButAnswerLost = Scenario(
        "processor-charged-answer-lost",
        story: """
            The processor makes the charge and then the answer is lost (HTTP 502 after the charge). Payments cannot \
            know whether the card was charged, so it calls again with the same idempotency key; the processor \
            replays the original charge. The customer is charged exactly once and the order confirmed.
            """,
        faults: ["processor: charge made, answer lost, once"],
        checks: ["confirmed", "exactly one charge in the ledger"]
    ) { context in
        try await context.standardSystem()
        try await context.shop.gatewayFaults(#"{"kind":"charge-then-drop","count":1,"endpoint":"charges"}"#)
        let (id, _) = try await context.order(expecting: "confirmed")
        try context.expect(try await context.charges(for: id) == 1, "exactly one charge")
    }

    static let downBeyondRetryBudget = Scenario(
        "processor-down-beyond-retry-budget",
        story: """
            The processor answers every charge with 503 for longer than payments' retry budget (5 deliveries with \
            backoff). On the last attempt payments gives up and publishes payment.failed (processor-unavailable): the \
            order is cancelled with that reason and inventory releases the stock. Once the processor is back, a new \
            order goes through.
            """,
        faults: ["processor: HTTP 503 for every charge until cleared"],
        checks: ["cancelled with 'payment failed: processor-unavailable'", "stock released", "no captured charge", "next order confirmed"]
    ) { context in
        try await context.standardSystem()
        try await context.shop.gatewayFaults(#"{"kind":"error","status":503,"endpoint":"charges"}"#)
        let (id, customer) = try await context.order(expecting: "cancelled", timeout: .seconds(60))
        let order = try await context.shop.order(id, customer: customer)
        try context.expect(order.reason == "payment failed: processor-unavailable", "reason \(order.reason ?? "none")")
        try await context.expectStock((10, 0), "stock released")
        try context.expect(try await context.charges(for: id) == 0, "no charge")
        try await context.shop.clearGatewayFaults()
        try await context.order(expecting: "confirmed")
    }

    static let refundFailingThenSucceeding = Scenario(
        "refund-failing-then-succeeding",
        story: """
            A customer cancels a confirmed order while the processor fails refunds (three HTTP 500s). Payments keeps \
            the cancellation request on the bus, retrying with the same refund key, until the refund goes through; \
            then the stock comes back and the order ends cancelled, refunded once.
            """,
        faults: ["processor: HTTP 500 for the next 3 refunds"],
        checks: ["cancelled", "one refund of the total", "stock back"]
    ) { context in
        try await context.standardSystem()
        let (id, customer) = try await context.order(quantity: 2, expecting: "confirmed")
        try await context.shop.gatewayFaults(#"{"kind":"error","status":500,"count":3,"endpoint":"refunds"}"#)
        _ = try await context.shop.cancel(id, customer: customer)
        try await context.shop.waitFor(id, customer: customer, status: "cancelled")
        let refunds = try await context.system.scalar(
            "SELECT count(*)::int FROM payment_gateway.refunds r JOIN payment_gateway.charges c ON c.id = r.charge_id WHERE c.reference = \(id.uuidString)",
            as: Int.self
        )
        try context.expect(refunds == 1, "refunds \(refunds ?? 0)")
        try await context.expectStock((10, 0), "stock back")
    }
}
