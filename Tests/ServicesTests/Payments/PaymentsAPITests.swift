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

    /// The card processor is unreachable here. A delivery that knows what to charge calls it on every attempt and,
    /// after the last, records a failed payment of that amount; one that does not is refused before the call, every
    /// attempt, and ends in dead letters with that reason. The end states tell the cases apart (the deliveries
    /// themselves are gone within seconds, as the retries run out).
    @Test func chargesWhatStockReservedCarriesOrWhatAQueuedOrderPlacedRecorded() async throws {
        // A short timeout: the HTTP client keeps retrying a refused connection until it runs out.
        let gateway = GatewaySettings(url: URL(string: "http://127.0.0.1:9")!, timeout: .milliseconds(200), tries: 1)
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
            func unavailablePayment(_ order: UUID) async throws -> Int? {
                try await world.scalar(
                    """
                    SELECT amount_cents FROM payments.payments
                    WHERE order_id = \(order) AND status = 'failed' AND reason LIKE 'card processor unavailable%'
                    """,
                    as: Int.self
                )
            }
            try await eventually("the carried amount charged until the retries ran out", timeout: .seconds(60)) {
                try await unavailablePayment(carried) == 1500
            }
            try await eventually("the recorded intent's amount charged until the retries ran out", timeout: .seconds(60)) {
                try await unavailablePayment(legacy) == 4200
            }
            try await eventually("the order with no amount anywhere dead-lettered with its reason", timeout: .seconds(60)) {
                let errors = try await world.scalar(
                    """
                    SELECT array_to_string(d.errors, ' | ') FROM bus.dead_letters d JOIN bus.events e ON e.id = d.event_id
                    WHERE d.subscription = 'payments' AND upper(e.payload->>'orderId') = upper(\(unknown.uuidString))
                    """,
                    as: String.self
                )
                return errors?.contains("carries no amount, and no order.placed was seen") == true
            }
        }
    }
}
