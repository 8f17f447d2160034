import Foundation
import HTTPTypes
import HummingbirdTesting
import PostboxBus
import PostboxContracts
import PostboxService
import PostgresNIO
import Testing

@testable import Payments

@Suite("payments HTTP API")
struct PaymentsAPITests {
    @Test func listsAnOrdersPaymentsAndRejectsBadQueries() async throws {
        let gateway = GatewaySettings(url: URL(string: "http://127.0.0.1:9")!)
        try await withService("payments", role: "payments", build: { buildPayments($0, gateway: gateway) }) { client, world in
            let order = UUID()
            let payment = UUID()
            _ = try await world.withSuperuser { connection in
                try await connection.query(
                    """
                    INSERT INTO payments.payments (id, order_id, amount_cents, status, charge_id)
                    VALUES (\(payment), \(order), 2500, 'captured', 'ch_1')
                    """,
                    logger: testLogger
                )
            }
            let listed = try await client.send(.get, "/payments?orderId=\(order)")
            #expect(listed.status == .ok)
            #expect(
                try listed.decode([PaymentsController.PaymentView].self) == [
                    .init(id: payment, orderId: order, amountCents: 2500, status: "captured")
                ]
            )
            #expect(try await client.send(.get, "/payments?orderId=\(UUID())").decode([PaymentsController.PaymentView].self).isEmpty)
            #expect(try await client.send(.get, "/payments").status == .badRequest)
            let bad = try await client.send(.get, "/payments?orderId=42")
            #expect(bad.status == .badRequest)
            #expect(try bad.problem().detail == "orderId must be a UUID, got '42'")
        }
    }

    /// The card processor is unreachable here, so a delivery that knows what to charge fails as "unavailable" and is
    /// retried; one that does not fails earlier, with its own reason. The errors recorded on the deliveries tell
    /// the two apart.
    @Test func chargesWhatStockReservedCarriesOrWhatAQueuedOrderPlacedRecorded() async throws {
        let gateway = GatewaySettings(url: URL(string: "http://127.0.0.1:9")!, tries: 1)
        try await withService("payments", role: "payments", build: { buildPayments($0, gateway: gateway) }) { _, world in
            let subscribed = try await world.scalar(
                "SELECT count(*)::int FROM bus.subscriptions WHERE subscription = 'payments' AND topic = 'order.placed'",
                as: Int.self
            )
            #expect(subscribed == 0, "payments learns what to charge from stock.reserved, not order.placed")

            // An order.placed delivery queued for payments before it stopped subscribing still records what to charge.
            let legacy = UUID()
            try await world.context.bus.publish(
                EventEnvelope(
                    OrderPlaced(orderId: legacy, customerId: UUID(), lines: [], totalCents: 4200, paymentToken: "tok_visa"),
                    orderingKey: legacy.uuidString
                )
            )
            _ = try await world.withSuperuser { connection in
                try await connection.query(
                    """
                    INSERT INTO bus.deliveries (subscription, event_id, ordering_key, visible_at)
                    SELECT 'payments', id, ordering_key, now() FROM bus.events WHERE type = 'order.placed'
                    """,
                    logger: testLogger
                )
            }
            try await eventually("the queued order.placed recorded") {
                try await world.scalar("SELECT amount_cents FROM payments.intents WHERE order_id = \(legacy)", as: Int.self) == 4200
            }

            let carried = UUID()
            let unknown = UUID()
            for reserved in [
                StockReserved(orderId: carried, totalCents: 1500, paymentToken: "tok_visa"),
                StockReserved(orderId: legacy),
                StockReserved(orderId: unknown),
            ] {
                try await world.context.bus.publish(EventEnvelope(reserved, orderingKey: reserved.orderId.uuidString))
            }
            func firstError(_ order: UUID) async throws -> String? {
                try await world.scalar(
                    """
                    SELECT d.errors[1] FROM bus.deliveries d JOIN bus.events e ON e.id = d.event_id
                    WHERE d.subscription = 'payments' AND e.type = 'stock.reserved'
                      AND upper(e.payload->>'orderId') = upper(\(order.uuidString))
                    """,
                    as: String?.self
                ) ?? nil
            }
            for order in [carried, legacy] {
                try await eventually("order \(order) charged and found the processor unavailable") {
                    try await firstError(order)?.contains("card processor unavailable") == true
                }
            }
            try await eventually("the order with no amount anywhere refused with its reason") {
                try await firstError(unknown)?.contains("carries no amount, and no order.placed was seen") == true
            }
        }
    }
}
