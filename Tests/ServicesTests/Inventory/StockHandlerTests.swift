import Foundation
import HTTPTypes
import HummingbirdTesting
import PostboxBus
import PostboxContracts
import PostboxService
import PostgresNIO
import Testing

@testable import Inventory

@Suite("inventory reactions to the order flow")
struct StockHandlerTests {
    func products(_ world: ServiceWorld) async throws -> [String: (onHand: Int, reserved: Int)] {
        try await world.withSuperuser { connection in
            let rows = try await connection.query("SELECT sku, on_hand, reserved FROM inventory.products", logger: testLogger)
            var result: [String: (Int, Int)] = [:]
            for try await (sku, onHand, reserved) in rows.decode((String, Int, Int).self) { result[sku] = (onHand, reserved) }
            return result
        }
    }

    func events(_ world: ServiceWorld, type: String) async throws -> [String] {
        try await world.withSuperuser { connection in
            let rows = try await connection.query("SELECT payload::text FROM bus.events WHERE type = \(type)", logger: testLogger)
            var result: [String] = []
            for try await text in rows.decode(String.self) { result.append(text) }
            return result
        }
    }

    @Test func reservesAllLinesOrNone() async throws {
        try await withService("inventory", role: "inventory", build: buildInventory) { client, world in
            try await client.send(.put, "/products/a", json: #"{"name":"A","priceCents":100,"stock":5}"#)
            try await client.send(.put, "/products/b", json: #"{"name":"B","priceCents":200,"stock":1}"#)
            let fits = UUID()
            let tooMany = UUID()
            let bus = world.context.bus
            try await bus.publish(
                EventEnvelope(
                    OrderPlaced(
                        orderId: fits,
                        customerId: UUID(),
                        lines: [.init(sku: "a", quantity: 2, priceCents: 100), .init(sku: "b", quantity: 1, priceCents: 200)],
                        totalCents: 400,
                        paymentToken: "t"
                    ),
                    orderingKey: fits.uuidString
                )
            )
            // One after the other: handled concurrently, either order could win the last b.
            try await eventually("the first order answered") {
                try await events(world, type: "stock.reserved").count == 1
            }
            try await bus.publish(
                EventEnvelope(
                    OrderPlaced(
                        orderId: tooMany,
                        customerId: UUID(),
                        lines: [.init(sku: "a", quantity: 1, priceCents: 100), .init(sku: "b", quantity: 1, priceCents: 200)],
                        totalCents: 300,
                        paymentToken: "t"
                    ),
                    orderingKey: tooMany.uuidString
                )
            )
            try await eventually("both orders answered") {
                try await events(world, type: "stock.reserved").count + events(world, type: "stock.rejected").count == 2
            }
            let stock = try await products(world)
            #expect(stock["a"]?.reserved == 2)
            #expect(stock["b"]?.reserved == 1)
            let rejected = try await events(world, type: "stock.rejected")
            #expect(rejected.count == 1)
            #expect(rejected.first?.contains(tooMany.uuidString) == true)
            #expect(rejected.first?.contains("b: 1 wanted, 0 available") == true)
        }
    }

    @Test func capturedTakesStockFailedReleasesItRefundedReturnsIt() async throws {
        try await withService("inventory", role: "inventory", build: buildInventory) { client, world in
            try await client.send(.put, "/products/a", json: #"{"name":"A","priceCents":100,"stock":10}"#)
            let bus = world.context.bus
            let captured = UUID()
            let failed = UUID()
            for order in [captured, failed] {
                try await bus.publish(
                    EventEnvelope(
                        OrderPlaced(
                            orderId: order,
                            customerId: UUID(),
                            lines: [.init(sku: "a", quantity: 3, priceCents: 100)],
                            totalCents: 300,
                            paymentToken: "t"
                        ),
                        orderingKey: order.uuidString
                    )
                )
            }
            try await eventually("6 reserved") { try await products(world)["a"]?.reserved == 6 }
            let capture = try EventEnvelope(
                PaymentCaptured(orderId: captured, paymentId: UUID(), amountCents: 300, chargeId: "ch"),
                orderingKey: captured.uuidString
            )
            try await bus.publish(capture)
            try await bus.publish(try EventEnvelope(PaymentFailed(orderId: failed, reason: "declined"), orderingKey: failed.uuidString))
            // A duplicate of the capture (same event id) must not take the stock twice.
            try await bus.publish(capture)
            try await eventually("captured taken, failed released") {
                let a = try await products(world)["a"]
                return a?.onHand == 7 && a?.reserved == 0
            }
            try await bus.publish(
                try EventEnvelope(PaymentRefunded(orderId: captured, paymentId: UUID(), amountCents: 300), orderingKey: captured.uuidString)
            )
            try await eventually("refunded stock back") { try await products(world)["a"]?.onHand == 10 }
            let statuses = try await world.withSuperuser { connection in
                let rows = try await connection.query("SELECT order_id, status FROM inventory.reservations", logger: testLogger)
                var result: [UUID: String] = [:]
                for try await (id, status) in rows.decode((UUID, String).self) { result[id] = status }
                return result
            }
            #expect(statuses == [captured: "restocked", failed: "released"])
        }
    }
}
