import AsyncHTTPClient
public import Foundation
public import NIOCore
public import NIOHTTP1
import PostboxHarness

/// The lab's client of the public HTTP APIs: what a customer, an operator or the card processor's admin does.
public struct Shop: Sendable {
    /// The system it talks to.
    public let system: PostboxSystem

    /// Creates the value from its parts.
    public init(system: PostboxSystem) { self.system = system }

    /// An HTTP answer.
    public struct Answer: Sendable {
        /// The HTTP status or the order status.
        public var status: Int
        /// The response body.
        public var body: Data
        /// The response headers.
        public var headers: [(String, String)]

        /// The body decoded as JSON.
        public func decode<Value: Decodable>(_ type: Value.Type = Value.self) throws -> Value {
            do {
                return try JSONDecoder().decode(Value.self, from: body)
            } catch {
                throw LabError("could not read \(Value.self) from HTTP \(status): \(text)")
            }
        }

        /// The body as text.
        public var text: String { String(decoding: body, as: UTF8.self) }
        /// The first header of that name, ignoring case.
        public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    /// A customer as the API gave it.
    public struct Customer: Sendable, Decodable {
        /// The id.
        public var id: UUID
        /// The bearer token.
        public var token: String
        var authorization: [String: String] { ["Authorization": "Bearer \(token)"] }
    }

    /// An order as `GET /orders/{id}` shows it.
    public struct Order: Sendable, Decodable {
        /// The id.
        public var id: UUID
        /// The HTTP status or the order status.
        public var status: String
        /// Why, in words a person can read.
        public var reason: String?
        /// The order total, in cents.
        public var totalCents: Int
        /// Whether a cancellation is under way.
        public var cancellationRequested: Bool?
    }

    /// A product as inventory shows it.
    public struct Product: Sendable, Decodable {
        /// The product.
        public var sku: String
        /// The unit price, in cents.
        public var priceCents: Int
        /// Units on hand.
        public var onHand: Int
        /// Units held for orders in flight.
        public var reserved: Int
        /// Units that can still be ordered.
        public var available: Int
    }

    struct Created: Decodable { var id: UUID }
    struct Accepted: Decodable {
        var orderId: UUID
        var status: String
    }

    // MARK: Raw calls

    /// One HTTP call with a JSON body; transport errors throw.
    public static func call(
        _ method: HTTPMethod,
        _ url: String,
        json: String? = nil,
        headers: [String: String] = [:],
        timeout: TimeAmount = .seconds(10)
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 1 << 22)
        return Answer(status: Int(response.status.code), body: Data(body.readableBytesView), headers: response.headers.map { ($0.name, $0.value) })
    }

    /// Whether `GET /ready` answers 200.
    public static func isReady(port: Int) async -> Bool {
        (try? await call(.GET, "http://127.0.0.1:\(port)/ready", timeout: .seconds(1)).status) == 200
    }

    func expect(_ answer: Answer, _ statuses: Set<Int>, _ what: String) throws -> Answer {
        guard statuses.contains(answer.status) else { throw LabError("\(what) answered \(answer.status): \(answer.text)") }
        return answer
    }

    // MARK: Inventory

    /// Creates or updates a product and notes its stock as the initial stock (for the conservation invariant).
    public func product(_ sku: String, priceCents: Int = 1000, stock: Int) async throws {
        let url = try system.url("inventory")
        _ = try expect(
            try await Shop.call(.PUT, "\(url)/products/\(sku)", json: #"{"name":"\#(sku)","priceCents":\#(priceCents),"stock":\#(stock)}"#),
            [200, 201],
            "PUT /products/\(sku)"
        )
        system.noteInitialStock(sku: sku, stock: stock)
    }

    /// Changes a product's price only, leaving its stock alone.
    public func price(_ sku: String, priceCents: Int) async throws {
        let url = try system.url("inventory")
        _ = try expect(
            try await Shop.call(.PUT, "\(url)/products/\(sku)", json: #"{"name":"\#(sku)","priceCents":\#(priceCents)}"#),
            [200],
            "PUT /products/\(sku) (price)"
        )
        system.record("inventory", "price of \(sku) set to \(priceCents)")
    }

    /// A product as inventory shows it.
    public func product(_ sku: String) async throws -> Product {
        try await Shop.call(.GET, "\(try system.url("inventory"))/products/\(sku)").decode()
    }

    // MARK: Orders

    /// A new customer (`POST /customers`).
    public func customer() async throws -> Customer {
        try expect(try await Shop.call(.POST, "\(try system.url("orders"))/customers", json: "{}"), [201], "POST /customers").decode()
    }

    /// A new cart holding `items`, waiting until the catalogue knows each SKU.
    public func cart(for customer: Customer, items: [(sku: String, quantity: Int)], timeout: Duration = .seconds(20)) async throws -> UUID {
        let orders = try system.url("orders")
        let cart: Created = try expect(
            try await Shop.call(.POST, "\(orders)/carts", headers: customer.authorization),
            [201],
            "POST /carts"
        ).decode()
        for item in items {
            var last: Answer?
            try await eventually("\(item.sku) in the orders catalogue", timeout: timeout, diagnostic: { last?.text ?? "" }) {
                let answer = try await Shop.call(
                    .POST,
                    "\(orders)/carts/\(cart.id)/items",
                    json: #"{"sku":"\#(item.sku)","quantity":\#(item.quantity)}"#,
                    headers: customer.authorization
                )
                last = answer
                return answer.status == 200
            }
        }
        return cart.id
    }

    /// Checks out; returns the raw answer (a crash point may cut it off: then this throws).
    public func checkout(
        _ cart: UUID,
        customer: Customer,
        paymentToken: String = "tok_visa",
        idempotencyKey: String? = nil,
        traceparent: String? = nil
    ) async throws -> Answer {
        var headers = customer.authorization
        if let idempotencyKey { headers["Idempotency-Key"] = idempotencyKey }
        if let traceparent { headers["traceparent"] = traceparent }
        return try await Shop.call(
            .POST,
            "\(try system.url("orders"))/carts/\(cart)/checkout",
            json: #"{"paymentToken":"\#(paymentToken)"}"#,
            headers: headers
        )
    }

    /// A customer, a cart with `quantity` of `sku`, and a checkout; returns the order id.
    public func placeOrder(sku: String, quantity: Int = 1, paymentToken: String = "tok_visa") async throws -> (UUID, Customer) {
        let customer = try await customer()
        let cart = try await cart(for: customer, items: [(sku, quantity)])
        let accepted: Accepted = try expect(
            try await checkout(cart, customer: customer, paymentToken: paymentToken, idempotencyKey: UUID().uuidString),
            [202],
            "checkout"
        ).decode()
        return (accepted.orderId, customer)
    }

    /// The order as its customer sees it.
    public func order(_ id: UUID, customer: Customer) async throws -> Order {
        try expect(
            try await Shop.call(.GET, "\(try system.url("orders"))/orders/\(id)", headers: customer.authorization),
            [200],
            "GET /orders/\(id)"
        ).decode()
    }

    /// Waits until the order is `status`.
    public func waitFor(_ id: UUID, customer: Customer, status: String, timeout: Duration = .seconds(30)) async throws {
        var last = "never read"
        try await eventually("order \(id) \(status)", timeout: timeout, diagnostic: { "last seen: \(last)" }) {
            let order = try await order(id, customer: customer)
            last = order.status + (order.reason.map { " (\($0))" } ?? "")
            return order.status == status
        }
    }

    /// Asks to cancel the order.
    public func cancel(_ id: UUID, customer: Customer) async throws -> Answer {
        try await Shop.call(.POST, "\(try system.url("orders"))/orders/\(id)/cancel", headers: customer.authorization)
    }

    // MARK: The card processor

    /// Programs the card-processor stand-in's faults (one fault object or an array, as JSON).
    public func gatewayFaults(_ json: String) async throws {
        _ = try expect(try await Shop.call(.PUT, "\(try system.url("payment-gateway"))/__admin/faults", json: json), [200], "PUT /__admin/faults")
        system.record("payment-gateway", "faults: \(json)")
    }

    /// Clears the card-processor stand-in's faults.
    public func clearGatewayFaults() async throws {
        _ = try expect(try await Shop.call(.DELETE, "\(try system.url("payment-gateway"))/__admin/faults"), [204], "DELETE /__admin/faults")
        system.record("payment-gateway", "faults cleared")
    }
}
