public import Foundation
import PostboxHarness
import PostgresNIO

extension ScenarioContext {
    /// The whole system, `instances` of each consumer, and a product `mug` (12.50) with `stock` units.
    public func standardSystem(
        instances: Int = 1,
        stock: Int = 10,
        environment: [SystemService: [String: String]] = [:]
    ) async throws {
        try await system.startAll(instances: instances, environment: environment)
        try await shop.product("mug", priceCents: 1250, stock: stock)
    }

    /// The whole system with `proxied` connected to PostgreSQL through a fault proxy, and 10 mugs.
    public func standardSystem(proxied: SystemService) async throws {
        try await system.start(.paymentGateway)
        for service in [SystemService.inventory, .orders, .payments] {
            try await system.start(service, proxied: service == proxied)
        }
        try await shop.product("mug", priceCents: 1250, stock: 10)
    }

    /// Places an order and waits until it has `status`.
    @discardableResult
    public func order(
        sku: String = "mug",
        quantity: Int = 1,
        paymentToken: String = "tok_visa",
        expecting status: String,
        timeout: Duration = .seconds(30)
    ) async throws -> (UUID, Shop.Customer) {
        let (id, customer) = try await shop.placeOrder(sku: sku, quantity: quantity, paymentToken: paymentToken)
        try await shop.waitFor(id, customer: customer, status: status, timeout: timeout)
        return (id, customer)
    }

    /// Waits until the process `label` has exited with `code`.
    public func waitForExit(_ label: String, code: Int32, timeout: Duration = .seconds(30)) async throws {
        guard let process = system.process(label) else { throw LabError("no process \(label)") }
        try await eventually("\(label) to exit with \(code)", timeout: timeout, diagnostic: { process.tail() }) {
            !process.isRunning && process.exits.last?.code == code
        }
    }

    /// The number of charges in the processor's ledger for `order`.
    public func charges(for order: UUID) async throws -> Int {
        try await system.scalar("SELECT count(*)::int FROM payment_gateway.charges WHERE lower(reference) = \(order.uuidString.lowercased())") ?? 0
    }

    /// A product's on-hand and reserved counts.
    public func stock(_ sku: String = "mug") async throws -> (onHand: Int, reserved: Int) {
        let product = try await shop.product(sku)
        return (product.onHand, product.reserved)
    }

    /// Waits until a product's on-hand and reserved counts are `expected`, and fails naming `what` and the counts
    /// last seen if they are not within `timeout`. An order's final status is set by orders while inventory handles
    /// the same event on its own, so stock is checked with a deadline, never at the moment the status changes.
    public func expectStock(
        _ expected: (onHand: Int, reserved: Int),
        _ what: String,
        sku: String = "mug",
        timeout: Duration = .seconds(30)
    ) async throws {
        var last: (onHand: Int, reserved: Int)?
        do {
            try await eventually(what, timeout: timeout) {
                let seen = try await stock(sku)
                last = seen
                return seen == expected
            }
        } catch is WaitTimedOut {
            throw ScenarioFailure("\(what): stock \(last.map { "\($0)" } ?? "unreadable"), expected \(expected)")
        }
    }
}
