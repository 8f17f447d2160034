import EmbeddedPostgres
import Foundation
import PostboxHarness
import PostgresNIO

/// The platform misbehaves: PostgreSQL restarts, the network between a service and PostgreSQL degrades, services
/// start before their database or with a bad configuration.
enum InfrastructureScenarios {
    static let all: [Scenario] = [
        postgresRestart(.fast), postgresRestart(.immediate), latency, reset, blackhole, oneWayCut, startedBeforeDatabase,
        misconfigured,
    ]

    static func postgresRestart(_ mode: EmbeddedPostgresMode) -> Scenario {
        Scenario(
            "postgres-restart-\(mode.rawValue)",
            story: """
                PostgreSQL restarts (\(mode == .fast ? "a clean, fast shutdown" : "an immediate shutdown, as after a crash, with recovery")) \
                while orders are in flight. Every service loses its connections, reconnects, and re-polls the bus after \
                the LISTEN connection comes back; orders placed before and after the restart are all confirmed.
                """,
            faults: ["PostgreSQL restart (\(mode.rawValue)) with 3 orders in flight"],
            checks: ["6 confirmed", "one charge each"]
        ) { context in
            try await context.standardSystem()
            var placed: [(UUID, Shop.Customer)] = []
            for _ in 0..<3 { placed.append(try await context.shop.placeOrder(sku: "mug")) }
            try await context.system.restartPostgres(mode == .fast ? .fast : .immediate)
            for label in ["orders", "inventory", "payments", "payment-gateway"] { try await context.system.waitReady(label) }
            for _ in 0..<3 {
                var order: (UUID, Shop.Customer)?
                // Right after the restart a pooled connection may still be found dead once; a client retries.
                try await eventually("a checkout after the restart") {
                    order = try await context.shop.placeOrder(sku: "mug")
                    return true
                }
                placed.append(order!)
            }
            for (id, customer) in placed {
                try await context.shop.waitFor(id, customer: customer, status: "confirmed", timeout: .seconds(45))
                try context.expect(try await context.charges(for: id) == 1, "one charge for \(id)")
            }
        }
    }

    /// The restart modes, named as the scenario names them.
    enum EmbeddedPostgresMode: String { case fast, immediate }

    static let latency = Scenario(
        "network-latency-to-postgres",
        story: """
            Every packet between payments and PostgreSQL is delayed by 40 ms each way. Payments gets slower, nothing \
            else changes: every order is confirmed and charged once.
            """,
        faults: ["40 ms latency both ways between payments and PostgreSQL"],
        checks: ["3 confirmed"]
    ) { context in
        try await context.standardSystem(proxied: .payments)
        try context.system.network("payments", .latency(.milliseconds(40)))
        for _ in 0..<3 { try await context.order(expecting: "confirmed") }
    }

    static let reset = Scenario(
        "network-reset-to-postgres",
        story: """
            Every connection between inventory and PostgreSQL is reset (RST) while an order is in flight, including \
            its LISTEN connection. Inventory reconnects; the bus re-polls after the reconnect, so no wake-up is missed; \
            the orders are confirmed.
            """,
        faults: ["reset every connection between inventory and PostgreSQL, twice"],
        checks: ["2 confirmed"]
    ) { context in
        try await context.standardSystem(proxied: .inventory)
        let first = try await context.shop.placeOrder(sku: "mug")
        try context.system.resetConnections("inventory")
        let second = try await context.shop.placeOrder(sku: "mug")
        try context.system.resetConnections("inventory")
        for (id, customer) in [first, second] { try await context.shop.waitFor(id, customer: customer, status: "confirmed") }
    }

    static let blackhole = Scenario(
        "network-blackhole-to-postgres",
        story: """
            The network between inventory and PostgreSQL turns into a blackhole: packets vanish, nothing fails \
            fast. The order waits while inventory's statements disappear. When the network heals and the dead connections are reset, inventory \
            reconnects and the order is confirmed; nothing is reserved twice.
            """,
        faults: ["blackhole between inventory and PostgreSQL until one of its statements is lost", "then heal and reset the stuck connections"],
        checks: ["pending during the outage", "confirmed after", "stock taken once"]
    ) { context in
        try await context.standardSystem(proxied: .inventory)
        try context.system.network("inventory", .blackhole)
        let (id, customer) = try await context.shop.placeOrder(sku: "mug", quantity: 2)
        let proxy = try context.system.proxy("inventory")
        try await eventually("inventory to run into the blackhole") { proxy.droppedPackets >= 1 }
        try context.expect(try await context.shop.order(id, customer: customer).status == "pending", "pending during the outage")
        try context.system.network("inventory", .pass)
        try context.system.resetConnections("inventory")
        try await context.shop.waitFor(id, customer: customer, status: "confirmed", timeout: .seconds(45))
        try await context.expectStock((8, 0), "stock taken once")
    }

    static let oneWayCut = Scenario(
        "network-one-way-cut-to-postgres",
        story: """
            PostgreSQL's answers to payments are dropped while payments' requests still arrive: a half-open \
            connection. Statements payments sent may have run. After the cut heals and the connections are reset, \
            payments retries; the processor's idempotency and the bus's lease make the outcome one payment, one charge.
            """,
        faults: ["drop PostgreSQL → payments until an answer is lost", "then heal and reset"],
        checks: ["confirmed", "one charge"]
    ) { context in
        try await context.standardSystem(proxied: .payments)
        try context.system.network("payments", .cutDownstream)
        let (id, customer) = try await context.shop.placeOrder(sku: "mug")
        let proxy = try context.system.proxy("payments")
        try await eventually("answers to payments to be lost") { proxy.droppedPackets >= 1 }
        try context.system.network("payments", .pass)
        try context.system.resetConnections("payments")
        try await context.shop.waitFor(id, customer: customer, status: "confirmed", timeout: .seconds(45))
        try context.expect(try await context.charges(for: id) == 1, "one charge")
    }

    static let startedBeforeDatabase = Scenario(
        "service-started-before-database",
        story: """
            Orders starts while its database cannot be reached (connections refused). It does not crash: it retries \
            with backoff, logging why, and becomes ready as soon as the database is reachable, then serves orders.
            """,
        faults: ["PostgreSQL refuses orders' connections until orders has reported it"],
        checks: ["not ready while refused", "ready after", "an order confirmed"]
    ) { context in
        try await context.system.start(.paymentGateway)
        try await context.system.start(.inventory)
        try await context.system.start(.payments)
        // Start behind a proxy that refuses every connection, then let it through.
        let process = try await context.system.start(.orders, proxied: true, proxyMode: .refuseNew, waitUntilReady: false)
        try await eventually("orders to report the unreachable database") {
            process.lines.contains { $0.text.contains("database not reachable yet") }
        }
        try context.expect(!process.lines.contains { $0.text.hasSuffix("listening") }, "orders serves without its database")
        try context.expect(process.isRunning, "orders gave up: \(process.tail())")
        try context.system.network("orders", .pass)
        try await context.system.waitReady("orders")
        // Created now: a subscription receives only what is published after it registered.
        try await context.shop.product("mug", priceCents: 1250, stock: 10)
        try await context.order(expecting: "confirmed")
    }

    static let misconfigured = Scenario(
        "misconfigured-service",
        story: """
            Payments is started without PAYMENT_GATEWAY_URL. It refuses to start: exit status 78 and one line that \
            names the variable. The rest of the system is unaffected, and payments starts once configured.
            """,
        faults: ["payments without PAYMENT_GATEWAY_URL"],
        checks: ["exit 78", "'payments: PAYMENT_GATEWAY_URL is missing'", "an order confirmed once configured"]
    ) { context in
        try await context.system.start(.paymentGateway)
        try await context.system.start(.inventory)
        try await context.system.start(.orders)
        let gateway = try context.system.url("payment-gateway")
        let process = try await context.system.start(.payments, environment: ["PAYMENT_GATEWAY_URL": ""], waitUntilReady: false)
        try await context.waitForExit("payments", code: 78)
        try context.expect(process.lines.map(\.text) == ["payments: PAYMENT_GATEWAY_URL is missing"], "output: \(process.tail())")
        process.updateEnvironment { $0["PAYMENT_GATEWAY_URL"] = gateway }
        try await context.system.restart("payments")
        try await context.shop.product("mug", priceCents: 1250, stock: 10)
        try await context.order(expecting: "confirmed")
    }
}
