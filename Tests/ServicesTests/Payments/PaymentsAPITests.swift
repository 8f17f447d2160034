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

    @Test func recordsWhatToChargeFromOrderPlaced() async throws {
        let gateway = GatewaySettings(url: URL(string: "http://127.0.0.1:9")!)
        try await withService("payments", role: "payments", build: { buildPayments($0, gateway: gateway) }) { _, world in
            let order = UUID()
            try await world.context.bus.publish(
                EventEnvelope(
                    OrderPlaced(orderId: order, customerId: UUID(), lines: [], totalCents: 4200, paymentToken: "tok_visa"),
                    orderingKey: order.uuidString
                )
            )
            try await eventually("the intent recorded") {
                try await world.scalar("SELECT amount_cents FROM payments.intents WHERE order_id = \(order)", as: Int.self) == 4200
            }
        }
    }
}
