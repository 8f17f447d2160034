import EmbeddedPostgres
import Foundation
import PostboxHarness
import PostgresNIO

/// Many concurrent orders under a seeded random schedule of faults, with two instances of every consumer.
enum SoakScenario {
    /// A fault the schedule can pick.
    enum Fault: CaseIterable, CustomStringConvertible {
        case killAndRestart, pauseAndResume, processorErrors, processorLostAnswer, processorTimeout, postgresRestart

        var description: String {
            switch self {
            case .killAndRestart: "SIGKILL a consumer instance, then restart it"
            case .pauseAndResume: "SIGSTOP a consumer instance until the next batch of orders is placed"
            case .processorErrors: "processor: 3 × HTTP 500"
            case .processorLostAnswer: "processor: a charge made and its answer lost"
            case .processorTimeout: "processor: one call times out"
            case .postgresRestart: "PostgreSQL fast restart"
            }
        }
    }

    /// The schedule for `orders` orders from `seed`: which fault fires after which order. The same seed gives the
    /// same schedule.
    static func schedule(orders: Int, seed: UInt64) -> [(afterOrder: Int, fault: Fault, target: String)] {
        var generator = SeededGenerator(seed: seed)
        let targets = ["orders", "orders-2", "inventory", "inventory-2", "payments", "payments-2"]
        let count = max(4, orders / 40)
        return (0..<count).map { index in
            let after = (index + 1) * orders / (count + 1)
            let fault = Fault.allCases.randomElement(using: &generator)!
            return (after, fault, targets.randomElement(using: &generator)!)
        }.sorted { $0.afterOrder < $1.afterOrder }
    }

    /// The number of orders: `POSTBOX_SOAK_ORDERS`, 200 by default (the size CI runs).
    static var orderCount: Int {
        ProcessInfo.processInfo.environment["POSTBOX_SOAK_ORDERS"].flatMap(Int.init) ?? 200
    }

    static let soak = Scenario(
        "soak",
        story: """
            Hundreds of customers order concurrently (200 by default, POSTBOX_SOAK_ORDERS for more) across three \
            products with limited stock, some cards declined and some confirmed orders cancelled, while a seeded \
            random schedule of faults runs: consumer instances killed and restarted or frozen, the processor failing, \
            losing answers and timing out, PostgreSQL restarting. Two instances of every consumer compete. Whatever \
            happens, once quiet every invariant holds; the same seed replays the same schedule.
            """,
        faults: Fault.allCases.map(\.description),
        checks: ["every order final and consistent across services (the invariants)"]
    ) { context in
        let total = orderCount
        let plan = schedule(orders: total, seed: context.seed)
        context.system.record("harness", "soak: \(total) orders, seed \(context.seed), \(plan.count) faults")
        try await context.standardSystem(instances: 2, stock: total / 2)
        try await context.shop.product("lamp", priceCents: 4000, stock: total / 10)
        try await context.shop.product("vase", priceCents: 900, stock: total / 4)
        var generator = SeededGenerator(seed: context.seed ^ 0x5EED)
        let skus = ["mug", "lamp", "vase"]
        let orders = (0..<total).map { _ in
            (
                skus.randomElement(using: &generator)!, Int.random(in: 1...3, using: &generator),
                Double.random(in: 0..<1, using: &generator) < 0.1 ? "tok_decline" : "tok_visa",
                Double.random(in: 0..<1, using: &generator) < 0.05
            )
        }
        let shop = context.shop
        var next = 0
        var placed: [(UUID, Shop.Customer, Bool)] = []
        var paused: [String] = []
        for step in plan + [(total, Fault.processorErrors, "")] {
            // Place the orders up to this fault, 16 at a time.
            let batch = Array(orders[next..<min(step.afterOrder, total)])
            next = min(step.afterOrder, total)
            try await withThrowingTaskGroup(of: (UUID, Shop.Customer, Bool)?.self) { group in
                var inFlight = 0
                for (sku, quantity, token, cancel) in batch {
                    if inFlight >= 16, let done = try await group.next() {
                        if let done { placed.append(done) }
                        inFlight -= 1
                    }
                    group.addTask {
                        // A checkout can fail while a process is down; the customer tries again.
                        for _ in 0..<20 {
                            if let (id, customer) = try? await shop.placeOrder(sku: sku, quantity: quantity, paymentToken: token) {
                                return (id, customer, cancel)
                            }
                            try await Task.sleep(for: .milliseconds(200))
                        }
                        return nil
                    }
                    inFlight += 1
                }
                for try await done in group { if let done { placed.append(done) } }
            }
            // A frozen instance stays frozen while one batch of orders goes through.
            for label in paused { try context.system.resume(label) }
            paused = []
            guard step.afterOrder < total else { break }
            if step.fault == .pauseAndResume {
                try context.system.pause(step.target)
                paused.append(step.target)
            } else {
                try await inject(step.fault, target: step.target, context: context)
            }
        }
        try context.expect(placed.count == total, "\(total - placed.count) checkouts never got through")
        // Cancel some confirmed orders.
        try await context.system.quiesce(timeout: .seconds(120))
        for (id, customer, cancel) in placed where cancel {
            if try await shop.order(id, customer: customer).status == "confirmed" { _ = try await shop.cancel(id, customer: customer) }
        }
        try await context.system.quiesce(timeout: .seconds(120))
    }

    static func inject(_ fault: Fault, target: String, context: ScenarioContext) async throws {
        let system = context.system
        switch fault {
        case .killAndRestart:
            try await system.kill(target)
            try await system.restart(target)
        case .pauseAndResume:
            break  // paused and resumed around a batch by the loop
        case .processorErrors:
            try await context.shop.gatewayFaults(#"{"kind":"error","status":500,"count":3}"#)
        case .processorLostAnswer:
            try await context.shop.gatewayFaults(#"{"kind":"charge-then-drop","count":1,"endpoint":"charges"}"#)
        case .processorTimeout:
            try await context.shop.gatewayFaults(#"{"kind":"timeout","delayMs":1500,"count":1}"#)
        case .postgresRestart:
            try await system.restartPostgres(.fast)
            for process in system.processes { try await system.waitReady(process.name) }
        }
    }
}
