import Foundation
import HTTPTypes
import HummingbirdTesting
import PostboxBus
import PostboxContracts
import PostboxService
import PostgresNIO
import Testing

@testable import Inventory

@Suite("inventory HTTP API")
struct InventoryAPITests {
    struct Product: Decodable, Equatable {
        var sku: String
        var name: String
        var priceCents: Int
        var onHand: Int
        var reserved: Int
        var available: Int
    }

    func withInventory<R: Sendable>(
        test: String = #function,
        _ body: @Sendable (any TestClientProtocol, ServiceWorld) async throws -> R
    ) async throws -> R {
        try await withService("inventory", role: "inventory", test: test, build: buildInventory, body)
    }

    @Test func putCreatesThenUpdatesAProductAndPublishesEachChange() async throws {
        try await withInventory { client, world in
            let created = try await client.send(.put, "/products/mug-1", json: #"{"name":"Mug","priceCents":1250,"stock":7}"#)
            #expect(created.status == .created)
            #expect(try created.decode(Product.self) == Product(sku: "mug-1", name: "Mug", priceCents: 1250, onHand: 7, reserved: 0, available: 7))
            let updated = try await client.send(.put, "/products/mug-1", json: #"{"name":"Mug","priceCents":1300,"stock":9}"#)
            #expect(updated.status == .ok)
            let priceOnly = try await client.send(.put, "/products/mug-1", json: #"{"name":"Mug","priceCents":1300}"#)
            #expect(try priceOnly.decode(Product.self).onHand == 9)
            let read = try await client.send(.get, "/products/mug-1")
            #expect(try read.decode(Product.self).priceCents == 1300)
            #expect(try read.decode(Product.self).onHand == 9)
            let payloads = try await world.withSuperuser { connection in
                let rows = try await connection.query(
                    "SELECT payload::text FROM bus.events WHERE type = 'product.upserted' ORDER BY published_at",
                    logger: testLogger
                )
                var result: [ProductUpserted] = []
                for try await text in rows.decode(String.self) {
                    result.append(try JSONDecoder().decode(ProductUpserted.self, from: Data(text.utf8)))
                }
                return result
            }
            #expect(payloads.map(\.priceCents) == [1250, 1300, 1300])
            #expect(payloads.map(\.revision) == [1, 2, 3])
        }
    }

    @Test func badInputIsA4xxProblemAndChangesNothing() async throws {
        try await withInventory { client, world in
            let cases: [(String, String, HTTPResponse.Status)] = [
                ("/products/mug", #"{"name":"Mug","priceCents":1250"#, .badRequest),  // malformed JSON
                ("/products/mug", #"{"name":"Mug","stock":1}"#, .badRequest),  // missing price
                ("/products/mug", #"{"name":"Mug","priceCents":1250}"#, .unprocessableContent),  // new product without stock
                ("/products/mug", #"{"name":"Mug","priceCents":"a lot","stock":1}"#, .badRequest),  // wrong type
                ("/products/mug", #"{"name":"Mug","priceCents":-1,"stock":1}"#, .unprocessableContent),
                ("/products/mug", #"{"name":"Mug","priceCents":1,"stock":-5}"#, .unprocessableContent),
                ("/products/mug", #"{"name":"  ","priceCents":1,"stock":5}"#, .unprocessableContent),
                ("/products/bad%20sku", #"{"name":"Mug","priceCents":1,"stock":5}"#, .badRequest),
            ]
            for (uri, body, status) in cases {
                let response = try await client.send(.put, uri, json: body)
                #expect(response.status == status, "\(body)")
                let problem = try response.problem()
                #expect(problem.status == Int(status.code))
                #expect(problem.detail?.isEmpty == false)
            }
            let oversize = try await client.send(
                .put,
                "/products/mug",
                json: #"{"name":"\#(String(repeating: "x", count: 70_000))","priceCents":1,"stock":1}"#
            )
            #expect(oversize.status == .contentTooLarge)
            #expect(try oversize.problem().status == 413)
            let missing = try await client.send(.get, "/products/nothing-here")
            #expect(missing.status == .notFound)
            #expect(try missing.problem().detail == "no product with sku nothing-here")
            let unknownRoute = try await client.send(.get, "/nowhere")
            #expect(unknownRoute.status == .notFound)
            #expect(try await world.scalar("SELECT count(*) FROM inventory.products", as: Int.self) == 0)
            #expect(try await world.scalar("SELECT count(*) FROM bus.events", as: Int.self) == 0)
        }
    }

    @Test func operationalEndpointsAnswer() async throws {
        try await withInventory { client, _ in
            #expect(try await client.send(.get, "/health").status == .ok)
            #expect(try await client.send(.get, "/ready").status == .ok)
            let metrics = try await client.send(.get, "/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            let traced = try await client.send(
                .get,
                "/health",
                headers: [HTTPField.Name("traceparent")!: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
            )
            #expect(traced.headers[.traceId] == "4bf92f3577b34da6a3ce929d0e0e4736")
        }
    }

    @Test func stockCannotBeSetBelowWhatIsReserved() async throws {
        try await withInventory { client, world in
            try await client.send(.put, "/products/lamp", json: #"{"name":"Lamp","priceCents":4000,"stock":3}"#)
            try await world.context.bus.publish(
                EventEnvelope(
                    OrderPlaced(
                        orderId: UUID(),
                        customerId: UUID(),
                        lines: [.init(sku: "lamp", quantity: 2, priceCents: 4000)],
                        totalCents: 8000,
                        paymentToken: "tok"
                    )
                )
            )
            try await eventually("the reservation") {
                try await client.send(.get, "/products/lamp").decode(Product.self).reserved == 2
            }
            let lowered = try await client.send(.put, "/products/lamp", json: #"{"name":"Lamp","priceCents":4000,"stock":1}"#)
            #expect(lowered.status == .conflict)
            #expect(try lowered.problem().detail?.contains("2 units reserved") == true)
        }
    }
}
