import Foundation
import HTTPTypes
import HummingbirdTesting
import PostboxBus
import PostboxContracts
import PostboxService
import PostgresNIO
import Testing

@testable import Orders

@Suite("orders HTTP API")
struct OrdersAPITests {
    struct Created: Decodable {
        var id: UUID
        var token: String?
    }
    struct Accepted: Decodable, Equatable {
        var orderId: UUID
        var status: String
    }
    struct Order: Decodable {
        var id: UUID
        var status: String
        var reason: String?
        var lines: [OrderLine]
        var totalCents: Int
    }

    /// Orders with a catalogue of one product (`mug`, 12.50), replicated the way inventory's events would.
    func withOrders<R: Sendable>(
        test: String = #function,
        _ body: @Sendable (any TestClientProtocol, ServiceWorld) async throws -> R
    ) async throws -> R {
        try await withService("orders", role: "orders", test: test, build: buildOrders) { client, world in
            try await world.context.bus.publish([
                EventEnvelope(ProductUpserted(sku: "mug", name: "Mug", priceCents: 1250, revision: 1), orderingKey: "mug"),
                EventEnvelope(ProductUpserted(sku: "lamp", name: "Lamp", priceCents: 3000, revision: 1), orderingKey: "lamp"),
            ])
            try await eventually("the catalogue has the mug and the lamp") {
                try await world.scalar("SELECT count(*) FROM orders.catalogue", as: Int.self) == 2
            }
            return try await body(client, world)
        }
    }

    func customer(_ client: any TestClientProtocol) async throws -> HTTPFields {
        let created = try await client.send(.post, "/customers", json: #"{"name":"Ada"}"#)
        #expect(created.status == .created)
        return [.authorization: "Bearer \(try created.decode(Created.self).token ?? "")"]
    }

    func cart(_ client: any TestClientProtocol, _ auth: HTTPFields, quantity: Int = 2) async throws -> UUID {
        let cart = try await client.send(.post, "/carts", headers: auth).decode(Created.self).id
        let added = try await client.send(.post, "/carts/\(cart)/items", json: #"{"sku":"mug","quantity":\#(quantity)}"#, headers: auth)
        #expect(added.status == .ok)
        return cart
    }

    @Test func checkoutStoresAPendingOrderAndPublishesOrderPlacedOnce() async throws {
        try await withOrders { client, world in
            let auth = try await customer(client)
            let cart = try await cart(client, auth)
            let lamp = try await client.send(.post, "/carts/\(cart)/items", json: #"{"sku":"lamp","quantity":1}"#, headers: auth)
            #expect(lamp.status == .ok)
            var headers = auth
            headers[.idempotencyKey] = "checkout-1"
            let first = try await client.send(.post, "/carts/\(cart)/checkout", json: #"{"paymentToken":"tok_visa"}"#, headers: headers)
            #expect(first.status == .accepted)
            let accepted = try first.decode(Accepted.self)
            #expect(accepted.status == "pending")
            let again = try await client.send(.post, "/carts/\(cart)/checkout", json: #"{"paymentToken":"tok_visa"}"#, headers: headers)
            #expect(again.status == .accepted)
            #expect(try again.decode(Accepted.self) == accepted)
            let order = try await client.send(.get, "/orders/\(accepted.orderId)", headers: auth).decode(Order.self)
            #expect(order.status == "pending")
            #expect(order.totalCents == 5500)
            #expect(order.lines == [OrderLine(sku: "lamp", quantity: 1, priceCents: 3000), OrderLine(sku: "mug", quantity: 2, priceCents: 1250)])
            let placed = try await world.withSuperuser { connection in
                let rows = try await connection.query(
                    "SELECT payload::text, ordering_key FROM bus.events WHERE type = 'order.placed'",
                    logger: testLogger
                )
                var result: [(OrderPlaced, String?)] = []
                for try await (text, key) in rows.decode((String, String?).self) {
                    result.append((try JSONDecoder().decode(OrderPlaced.self, from: Data(text.utf8)), key))
                }
                return result
            }
            #expect(placed.count == 1)
            #expect(placed.first?.0.orderId == accepted.orderId)
            #expect(placed.first?.0.totalCents == 5500)
            #expect(placed.first?.0.lines.map(\.sku) == ["lamp", "mug"])
            #expect(placed.first?.0.paymentToken == "tok_visa")
            #expect(placed.first?.1 == accepted.orderId.uuidString)
            let secondCheckout = try await client.send(.post, "/carts/\(cart)/checkout", json: #"{"paymentToken":"tok_visa"}"#, headers: auth)
            #expect(secondCheckout.status == .conflict)
        }
    }

    /// A checkout without an Idempotency-Key builds its `order.placed` in SQL (`bus.publish_v1`): the event must
    /// decode to exactly what the order holds and carry the request's correlation id and trace.
    @Test func checkoutPublishesWhatTheOrderHolds() async throws {
        try await withOrders { client, world in
            var headers = try await customer(client)
            let cart = try await cart(client, headers, quantity: 3)
            #expect(try await client.send(.post, "/carts/\(cart)/items", json: #"{"sku":"lamp","quantity":2}"#, headers: headers).status == .ok)
            headers[HTTPField.Name("X-Correlation-Id")!] = "checkout-42"
            headers[HTTPField.Name("traceparent")!] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            let answer = try await client.send(.post, "/carts/\(cart)/checkout", json: #"{"paymentToken":"tok_mastercard"}"#, headers: headers)
            #expect(answer.status == .accepted)
            let orderId = try answer.decode(Accepted.self).orderId
            let customerId = try #require(try await world.scalar("SELECT customer_id FROM orders.orders WHERE id = \(orderId)", as: UUID.self))
            let events = try await world.withSuperuser { connection in
                let rows = try await connection.query(
                    """
                    SELECT payload::text, version, ordering_key, correlation_id, causation_id, traceparent
                    FROM bus.events WHERE type = 'order.placed'
                    """,
                    logger: testLogger
                )
                var found: [(OrderPlaced, Int, String?, String?, UUID?, String?)] = []
                for try await (text, version, key, correlation, causation, traceparent) in rows.decode(
                    (String, Int, String?, String?, UUID?, String?).self
                ) {
                    found.append(
                        (try JSONDecoder().decode(OrderPlaced.self, from: Data(text.utf8)), version, key, correlation, causation, traceparent)
                    )
                }
                return found
            }
            try #require(events.count == 1)
            let (placed, version, key, correlation, causation, traceparent) = events[0]
            #expect(
                placed
                    == OrderPlaced(
                        orderId: orderId,
                        customerId: customerId,
                        lines: [OrderLine(sku: "lamp", quantity: 2, priceCents: 3000), OrderLine(sku: "mug", quantity: 3, priceCents: 1250)],
                        totalCents: 9750,
                        paymentToken: "tok_mastercard"
                    )
            )
            #expect(version == OrderPlaced.eventVersion)
            #expect(key == orderId.uuidString)
            #expect(correlation == "checkout-42")
            #expect(causation == nil)
            #expect(traceparent?.hasPrefix("00-0af7651916cd43dd8448eb211c80319c-") == true)
        }
    }

    @Test func flowEventsMoveTheOrderToItsFinalStateOnce() async throws {
        try await withOrders { client, world in
            let auth = try await customer(client)
            var ids: [UUID] = []
            for _ in 0..<3 {
                let cart = try await cart(client, auth, quantity: 1)
                ids.append(
                    try await client.send(.post, "/carts/\(cart)/checkout", json: #"{"paymentToken":"t"}"#, headers: auth).decode(Accepted.self)
                        .orderId
                )
            }
            let bus = world.context.bus
            try await bus.publish(
                try EventEnvelope(
                    PaymentCaptured(orderId: ids[0], paymentId: UUID(), amountCents: 1250, chargeId: "ch"),
                    orderingKey: ids[0].uuidString
                )
            )
            try await bus.publish(try EventEnvelope(StockRejected(orderId: ids[1], reason: "out of stock: mug"), orderingKey: ids[1].uuidString))
            try await bus.publish(try EventEnvelope(PaymentFailed(orderId: ids[2], reason: "declined"), orderingKey: ids[2].uuidString))
            // A late failure for the confirmed order must not change it.
            try await bus.publish(try EventEnvelope(PaymentFailed(orderId: ids[0], reason: "late"), orderingKey: ids[0].uuidString))
            try await eventually("three final orders") {
                try await world.scalar("SELECT count(*) FROM orders.orders WHERE status <> 'pending'", as: Int.self) == 3
            }
            try await eventually("the late failure handled (with the two catalogue events)") {
                try await world.scalar("SELECT count(*) FROM bus.handled WHERE subscription = 'orders'", as: Int.self) == 6
            }
            let orders = try await ids.asyncMap { try await client.send(.get, "/orders/\($0)", headers: auth).decode(Order.self) }
            #expect(orders.map(\.status) == ["confirmed", "rejected", "cancelled"])
            #expect(orders[1].reason == "out of stock: mug")
            #expect(orders[2].reason == "payment failed: declined")

            let cancel = try await client.send(.post, "/orders/\(ids[0])/cancel", headers: auth)
            #expect(cancel.status == .accepted)
            #expect(try await world.scalar("SELECT count(*) FROM bus.events WHERE type = 'order.cancellation-requested'", as: Int.self) == 1)
            try await client.send(.post, "/orders/\(ids[0])/cancel", headers: auth)
            #expect(try await world.scalar("SELECT count(*) FROM bus.events WHERE type = 'order.cancellation-requested'", as: Int.self) == 1)
            #expect(try await client.send(.post, "/orders/\(ids[1])/cancel", headers: auth).status == .conflict)
            try await bus.publish(
                try EventEnvelope(PaymentRefunded(orderId: ids[0], paymentId: UUID(), amountCents: 1250), orderingKey: ids[0].uuidString)
            )
            try await eventually("the refunded order cancelled") {
                try await client.send(.get, "/orders/\(ids[0])", headers: auth).decode(Order.self).status == "cancelled"
            }
        }
    }

    @Test func concurrentCheckoutsOfOneCartPlaceOneOrderAndTheRestConflict() async throws {
        try await withOrders { client, world in
            let auth = try await customer(client)
            let cart = try await cart(client, auth, quantity: 3)
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String).self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let response = try await client.send(
                            .post,
                            "/carts/\(cart)/checkout",
                            json: #"{"paymentToken":"tok_visa"}"#,
                            headers: auth
                        )
                        return (response.status, String(buffer: response.body))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let accepted = statuses.filter { $0.0 == .accepted }
            #expect(accepted.count == 1, "\(statuses)")
            let orderId = try #require(accepted.first.map { try JSONDecoder().decode(Accepted.self, from: Data($0.1.utf8)).orderId })
            for (status, body) in statuses where status != .accepted {
                #expect(status == .conflict && body.contains("already checked out as order \(orderId)"), "\(body)")
            }
            #expect(try await world.scalar("SELECT count(*) FROM orders.orders", as: Int.self) == 1)
            #expect(try await world.scalar("SELECT count(*) FROM bus.events WHERE type = 'order.placed'", as: Int.self) == 1)
            let order = try await client.send(.get, "/orders/\(orderId)", headers: auth).decode(Order.self)
            #expect(order.totalCents == 3750)
            #expect(order.lines == [OrderLine(sku: "mug", quantity: 3, priceCents: 1250)])
        }
    }

    @Test func aCartWithAnItemNoLongerInTheCatalogueIsRefusedAndStaysOpen() async throws {
        try await withOrders { client, world in
            let auth = try await customer(client)
            let cart = try await cart(client, auth)
            #expect(try await client.send(.post, "/carts/\(cart)/items", json: #"{"sku":"lamp","quantity":1}"#, headers: auth).status == .ok)
            try await world.withSuperuser { connection in
                _ = try await connection.query("DELETE FROM orders.catalogue WHERE sku = 'lamp'", logger: testLogger)
            }
            let refused = try await client.send(.post, "/carts/\(cart)/checkout", json: #"{"paymentToken":"t"}"#, headers: auth)
            #expect(refused.status == .unprocessableContent)
            #expect(try refused.problem().detail == "sku 'lamp' is no longer in the catalogue")
            #expect(try await world.scalar("SELECT count(*) FROM orders.orders", as: Int.self) == 0)
            #expect(try await world.scalar("SELECT count(*) FROM orders.order_lines", as: Int.self) == 0)
            #expect(try await world.scalar("SELECT status FROM orders.carts WHERE id = \(cart)", as: String.self) == "open")
            #expect(try await world.scalar("SELECT count(*) FROM bus.events WHERE type = 'order.placed'", as: Int.self) == 0)
        }
    }

    @Test func clientMistakesAre4xxProblems() async throws {
        try await withOrders { client, world in
            let auth = try await customer(client)
            let cart = try await client.send(.post, "/carts", headers: auth).decode(Created.self).id
            let cases: [(HTTPRequest.Method, String, String?, HTTPFields, HTTPResponse.Status)] = [
                (.post, "/carts", nil, [:], .unauthorized),
                (.post, "/carts", nil, [.authorization: "Bearer nope"], .unauthorized),
                (.post, "/carts", nil, [.authorization: "Basic abc"], .unauthorized),
                (.post, "/carts/not-a-uuid/items", #"{"sku":"mug","quantity":1}"#, auth, .badRequest),
                (.post, "/carts/\(cart)/items", #"{"sku":"mug","quantity":0}"#, auth, .unprocessableContent),
                (.post, "/carts/\(cart)/items", #"{"sku":"mug","quantity":-3}"#, auth, .unprocessableContent),
                (.post, "/carts/\(cart)/items", #"{"sku":"mug","quantity":"two"}"#, auth, .badRequest),
                (.post, "/carts/\(cart)/items", #"{"sku":"mug"}"#, auth, .badRequest),
                (.post, "/carts/\(cart)/items", #"{"sku":"mug","#, auth, .badRequest),
                (.post, "/carts/\(cart)/items", #"{"sku":"teapot","quantity":1}"#, auth, .unprocessableContent),
                (.post, "/carts/\(UUID())/items", #"{"sku":"mug","quantity":1}"#, auth, .notFound),
                (.post, "/carts/\(cart)/checkout", #"{"paymentToken":"t"}"#, auth, .unprocessableContent),  // empty cart
                (.post, "/carts/\(cart)/checkout", #"{}"#, auth, .badRequest),
                (.get, "/orders/\(UUID())", nil, auth, .notFound),
                (.get, "/orders/42", nil, auth, .badRequest),
                (.post, "/customers", #"{"name":"#, [:], .badRequest),
            ]
            for (method, uri, body, headers, status) in cases {
                let response = try await client.send(method, uri, json: body, headers: headers)
                #expect(response.status == status, "\(method) \(uri) \(body ?? "")")
                #expect(try response.problem().detail?.isEmpty == false)
            }
            let unauthorized = try await client.send(.post, "/carts")
            #expect(unauthorized.headers[.wwwAuthenticate] == "Bearer")
            #expect(try await world.scalar("SELECT count(*) FROM orders.orders", as: Int.self) == 0)
            #expect(try await world.scalar("SELECT count(*) FROM orders.cart_items", as: Int.self) == 0)
        }
    }

    @Test func anotherCustomersCartAndOrderAreNotFound() async throws {
        try await withOrders { client, _ in
            let alice = try await customer(client)
            let bob = try await customer(client)
            let cart = try await cart(client, alice)
            let order = try await client.send(.post, "/carts/\(cart)/checkout", json: #"{"paymentToken":"t"}"#, headers: alice).decode(Accepted.self)
            #expect(try await client.send(.get, "/carts/\(cart)", headers: bob).status == .notFound)
            #expect(try await client.send(.get, "/orders/\(order.orderId)", headers: bob).status == .notFound)
            #expect(try await client.send(.post, "/orders/\(order.orderId)/cancel", headers: bob).status == .notFound)
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
