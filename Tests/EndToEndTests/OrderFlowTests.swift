import Foundation
import NIOHTTP1
import PostgresNIO
import Subprocess
import Testing

/// The four executables as real processes on one PostgreSQL: the happy path from customer to confirmed order,
/// checked in every service's data, the processor's ledger and the logs.
@Suite("order flow across processes")
struct OrderFlowTests {
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
        var totalCents: Int
    }
    struct Product: Decodable {
        var onHand: Int
        var reserved: Int
        var available: Int
    }
    struct Payment: Decodable {
        var orderId: UUID
        var amountCents: Int
        var status: String
    }
    struct Ledger: Decodable { var charges: [Charge] }
    struct Charge: Decodable {
        var amountCents: Int
        var status: String
        var traceId: String?
    }

    @Test func aCheckoutIsChargedOnceAndConfirmedAcrossEveryService() async throws {
        let system = try await SystemUnderTest.make()
        let traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
        let (orderId, statuses) = try await withProcesses(system.allSpecs) { processes in
            try await system.waitUntilReady(processes)
            let put = try await HTTP.call(.PUT, "\(system.url("inventory"))/products/mug", json: #"{"name":"Mug","priceCents":1250,"stock":5}"#)
            #expect(put.status == 201)
            let customer = try await HTTP.call(.POST, "\(system.url("orders"))/customers", json: #"{"name":"Ada"}"#).decode(Created.self)
            let auth = ["Authorization": "Bearer \(customer.token ?? "")"]
            let cart = try await HTTP.call(.POST, "\(system.url("orders"))/carts", headers: auth).decode(Created.self)
            try await eventually("the catalogue replicated to orders") {
                try await HTTP.call(.POST, "\(system.url("orders"))/carts/\(cart.id)/items", json: #"{"sku":"mug","quantity":2}"#, headers: auth)
                    .status == 200
            }
            let checkout = try await HTTP.call(
                .POST,
                "\(system.url("orders"))/carts/\(cart.id)/checkout",
                json: #"{"paymentToken":"tok_visa"}"#,
                headers: auth.merging(["Idempotency-Key": "ada-1", "traceparent": "00-\(traceId)-00f067aa0ba902b7-01"]) { $1 }
            )
            #expect(checkout.status == 202)
            #expect(checkout.headers.first(name: "X-Trace-Id") == traceId)
            let accepted = try checkout.decode(Accepted.self)
            #expect(accepted.status == "pending")
            try await eventually("order confirmed\n" + processes.map(\.tail).joined(separator: "\n")) {
                try await HTTP.call(.GET, "\(system.url("orders"))/orders/\(accepted.orderId)", headers: auth).decode(Order.self).status
                    == "confirmed"
            }
            let order = try await HTTP.call(.GET, "\(system.url("orders"))/orders/\(accepted.orderId)", headers: auth).decode(Order.self)
            #expect(order.totalCents == 2500)
            // Inventory settles the same payment.captured that confirmed the order, in its own time.
            try await eventually("inventory took the two mugs from its stock") {
                let product = try await HTTP.call(.GET, "\(system.url("inventory"))/products/mug").decode(Product.self)
                return (product.onHand, product.reserved, product.available) == (3, 0, 3)
            }
            let payments = try await HTTP.call(.GET, "\(system.url("payments"))/payments?orderId=\(accepted.orderId)").decode([Payment].self)
            #expect(payments.map(\.status) == ["captured"])
            #expect(payments.map(\.amountCents) == [2500])
            let ledger = try await HTTP.call(
                .GET,
                "\(system.url("payment-gateway"))/v1/charges?reference=\(accepted.orderId)"
            ).decode(Ledger.self)
            #expect(ledger.charges.map(\.status) == ["captured"])
            #expect(ledger.charges.map(\.amountCents) == [2500])
            #expect(ledger.charges.first?.traceId == traceId)
            // The trace id is in every service's log lines about this order.
            for process in processes where process.name != "payment-gateway" {
                #expect(process.lines.contains { $0.contains("trace.id=\(traceId)") }, "\(process.name) logged the trace id")
            }
            #expect(
                processes.first { $0.name == "payment-gateway" }!.lines.contains { $0.contains("trace.id=\(traceId)") && $0.contains("charge made") }
            )
            return accepted.orderId
        }
        for (name, status) in statuses { #expect(status == .exited(0), "\(name) exits 0 on SIGTERM") }

        // Stored data in every schema, as the services left it.
        #expect(try await system.rows("SELECT status FROM orders.orders WHERE id = \(orderId)", as: String.self) == ["confirmed"])
        #expect(try await system.rows("SELECT trace_id FROM orders.orders WHERE id = \(orderId)", as: String.self) == [traceId])
        #expect(try await system.rows("SELECT status FROM inventory.reservations WHERE order_id = \(orderId)", as: String.self) == ["committed"])
        #expect(try await system.rows("SELECT status FROM payments.payments WHERE order_id = \(orderId)", as: String.self) == ["captured"])
        #expect(try await system.rows("SELECT count(*) FROM payment_gateway.charges", as: Int.self) == [1])
        let flow = try await system.rows(
            "SELECT type FROM bus.events WHERE correlation_id = \(traceId) ORDER BY published_at",
            as: String.self
        )
        #expect(flow == ["order.placed", "stock.reserved", "payment.captured"])
        let traceparents = try await system.rows(
            "SELECT traceparent FROM bus.events WHERE correlation_id = \(traceId)",
            as: String.self
        )
        #expect(traceparents.allSatisfy { $0.contains(traceId) })
        #expect(try await system.rows("SELECT count(*) FROM bus.deliveries", as: Int.self) == [0])
        #expect(try await system.rows("SELECT count(*) FROM bus.dead_letters", as: Int.self) == [0])
    }

    @Test(.timeLimit(.minutes(1)))
    func aServiceWhosePortIsTakenExitsWithTheReasonInsteadOfHanging() async throws {
        let system = try await SystemUnderTest.make()
        // Another program holds the port, as one can between a free-port check and the service's bind.
        let holder = try ListeningSocket()
        defer { holder.close() }
        let spec = system.spec(
            "inventory",
            extra: ["HTTP_PORT": "\(holder.port)", "POSTBOX_PARENT_PID": "\(getpid())"]
        )
        let updates = Dictionary(uniqueKeysWithValues: spec.environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })
        let result = try await Subprocess.run(
            .path(spec.executable),
            environment: .inherit.updating(updates),
            output: .string(limit: 1 << 20),
            error: .combinedWithOutput
        )
        let output = result.standardOutput
        #expect(result.terminationStatus == .exited(1))
        #expect(output.contains("service failed") && output.contains("Address already in use"), "\(output)")
        // The parent watch was armed and saw its parent alive: the exit came from the failed bind alone.
        #expect(!output.contains("parent process is gone"), "\(output)")
    }

    @Test func aMisconfiguredServiceRefusesToStartNamingTheVariable() async throws {
        for (service, environment, expected) in [
            ("orders", ["DATABASE_URL": ""], "orders: DATABASE_URL is missing"),
            (
                "inventory", ["DATABASE_URL": "postgres://inventory@127.0.0.1/x", "HTTP_PORT": "http"],
                "inventory: HTTP_PORT must be a port number (0-65535), got 'http'"
            ),
            ("payments", ["DATABASE_URL": "postgres://payments@127.0.0.1/x", "PAYMENT_GATEWAY_URL": ""], "payments: PAYMENT_GATEWAY_URL is missing"),
        ] {
            let updates = Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })
            let result = try await Subprocess.run(
                .path(builtProduct(service)),
                environment: .inherit.updating(updates),
                output: .string(limit: 1 << 16),
                error: .string(limit: 1 << 16)
            )
            #expect(result.terminationStatus == .exited(78))
            #expect(result.standardError.trimmingCharacters(in: .newlines) == expected)
        }
    }
}

/// A TCP socket listening on a free port of 127.0.0.1, so that nobody else can bind that port until it is closed.
private final class ListeningSocket: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        struct SocketFailure: Error {}
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let descriptor = descriptor
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && listen(descriptor, 1) == 0
                    && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard descriptor >= 0, listening else { throw SocketFailure() }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(descriptor) }
}
