import ArgumentParser
import Foundation
import NIOHTTP1
import PostboxScenarios

/// `postbox demo`: three orders through the public APIs of a running system — one confirmed, one declined,
/// one out of stock — and their outcomes.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Place three orders (confirmed, declined, out of stock) through a running system and show them."
    )

    @Option(help: "The --port-base the system was started with.")
    var portBase: Int = 8080
    @Option(help: "Seconds to wait for each order to reach a final state.")
    var timeout: Int = 30

    struct Created: Decodable {
        var id: UUID
        var token: String?
    }
    struct Accepted: Decodable {
        var orderId: UUID
        var status: String
    }
    struct Order: Decodable {
        var id: UUID
        var status: String
        var reason: String?
        var totalCents: Int
    }
    struct Payment: Decodable {
        var status: String
        var amountCents: Int
    }

    func run() async throws {
        let orders = "http://127.0.0.1:\(portBase + 1)"
        let inventory = "http://127.0.0.1:\(portBase + 2)"
        let payments = "http://127.0.0.1:\(portBase + 3)"
        let suffix = String(UUID().uuidString.prefix(6)).lowercased()
        let mug = "demo-mug-\(suffix)"
        let lamp = "demo-lamp-\(suffix)"
        print("stocking inventory: \(mug) (10 in stock, 12.50), \(lamp) (none in stock, 40.00)")
        try await expect(.PUT, "\(inventory)/products/\(mug)", #"{"name":"Mug","priceCents":1250,"stock":10}"#, [200, 201])
        try await expect(.PUT, "\(inventory)/products/\(lamp)", #"{"name":"Lamp","priceCents":4000,"stock":0}"#, [200, 201])

        let customer: Created = try await decode(.POST, "\(orders)/customers", #"{"name":"Demo customer"}"#, [201])
        let auth = ["Authorization": "Bearer \(customer.token ?? "")"]
        let cases: [(title: String, sku: String, quantity: Int, token: String)] = [
            ("a mug, paid by card", mug, 2, "tok_visa"),
            ("a mug, card declined", mug, 1, "tok_decline"),
            ("a lamp, out of stock", lamp, 1, "tok_visa"),
        ]
        for (title, sku, quantity, token) in cases {
            let cart: Created = try await decode(.POST, "\(orders)/carts", nil, [201], headers: auth)
            try await waitForCatalogue(orders: orders, cart: cart.id, sku: sku, quantity: quantity, auth: auth)
            let accepted: Accepted = try await decode(
                .POST,
                "\(orders)/carts/\(cart.id)/checkout",
                #"{"paymentToken":"\#(token)"}"#,
                [202],
                headers: auth.merging(["Idempotency-Key": UUID().uuidString]) { $1 }
            )
            let order = try await waitForFinal(orders: orders, id: accepted.orderId, auth: auth)
            let paid: [Payment] = try await decode(.GET, "\(payments)/payments?orderId=\(order.id)", nil, [200])
            let payment = paid.first.map { "payment \($0.status) \(cents($0.amountCents))" } ?? "no payment"
            print(
                "\(title.padding(toLength: 24, withPad: " ", startingAt: 0)) order \(order.id)  \(order.status.uppercased())"
                    + "  total \(cents(order.totalCents))  \(payment)" + (order.reason.map { "  (\($0))" } ?? "")
            )
        }
        let stock = try await Shop.call(.GET, "\(inventory)/products/\(mug)")
        print("inventory of \(mug) now: \(String(decoding: stock.body, as: UTF8.self))")
    }

    private func waitForCatalogue(orders: String, cart: UUID, sku: String, quantity: Int, auth: [String: String]) async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            let answer = try await Shop.call(
                .POST,
                "\(orders)/carts/\(cart)/items",
                json: #"{"sku":"\#(sku)","quantity":\#(quantity)}"#,
                headers: auth
            )
            if answer.status == 200 { return }
            guard answer.status == 422, ContinuousClock.now < deadline else {
                throw ValidationFailure("adding \(sku) failed: \(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    private func waitForFinal(orders: String, id: UUID, auth: [String: String]) async throws -> Order {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            let order: Order = try await decode(.GET, "\(orders)/orders/\(id)", nil, [200], headers: auth)
            if order.status != "pending" { return order }
            guard ContinuousClock.now < deadline else {
                throw ValidationFailure("order \(id) still pending after \(timeout) s; see `postbox status`")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    private func expect(_ method: HTTPMethod, _ url: String, _ json: String?, _ statuses: Set<Int>) async throws {
        let answer = try await call(method, url, json)
        guard statuses.contains(answer.status) else {
            throw ValidationFailure("\(method) \(url) answered \(answer.status): \(String(decoding: answer.body, as: UTF8.self))")
        }
    }

    private func decode<Value: Decodable>(
        _ method: HTTPMethod,
        _ url: String,
        _ json: String?,
        _ statuses: Set<Int>,
        headers: [String: String] = [:]
    ) async throws -> Value {
        let answer = try await call(method, url, json, headers: headers)
        guard statuses.contains(answer.status) else {
            throw ValidationFailure("\(method) \(url) answered \(answer.status): \(String(decoding: answer.body, as: UTF8.self))")
        }
        return try JSONDecoder().decode(Value.self, from: answer.body)
    }

    /// One request; a service that does not answer at all is most likely not running, so the error says so.
    private func call(_ method: HTTPMethod, _ url: String, _ json: String?, headers: [String: String] = [:]) async throws -> Shop.Answer {
        do {
            return try await Shop.call(method, url, json: json, headers: headers)
        } catch {
            throw ValidationFailure("\(method) \(url) failed: \(error); is `postbox up --port-base \(portBase)` running?")
        }
    }

    private func cents(_ value: Int) -> String { String(format: "%d.%02d", value / 100, value % 100) }
}
