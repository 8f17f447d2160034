import ArgumentParser
import EmbeddedPostgres
import Foundation
import Histogram
import Logging
import PostboxHarness
import PostboxScenarios
import PostgresNIO

/// `postbox bench system`: start-up, order-flow latency through the real processes at a steady open-loop rate,
/// the highest rate that keeps p99 under 100 ms, and the same with two instances of each consumer.
struct SystemBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system",
        abstract: "Start-up times and order-flow latency (checkout accepted → confirmed) through the real processes."
    )

    @Option(help: "Checkouts per second, open loop.")
    var rate: Int = 100
    @Option(help: "Seconds at that rate.")
    var duration: Int = 60
    @Option(help: "Seconds fired at the same rate just before each measured window and left out of its figures.")
    var warmup: Int = 2
    @Option(help: "Seconds per step when searching the highest rate with p99 < 100 ms (0 skips the search).")
    var searchSeconds: Int = 10
    @Option(help: "Products in the catalogue; orders spread over them round-robin (1: every order buys the same item).")
    var products: Int = 100
    @Option(help: "Distinct products (one unit each) per order.")
    var lines: Int = 2
    @Flag(help: "Print JSON instead of a table.")
    var json = false
    @Flag(help: "After the steady run, print the statements that cost PostgreSQL most (pg_stat_statements), per order.")
    var statementStats = false
    @Flag(help: "Do not run `swift build` first, even from a package checkout.")
    var noBuild = false

    func validate() throws {
        guard (1...2000).contains(rate) else { throw ValidationError("--rate must be between 1 and 2000") }
        guard (1...600).contains(duration) else { throw ValidationError("--duration must be between 1 and 600") }
        guard (0...60).contains(warmup) else { throw ValidationError("--warmup must be between 0 and 60") }
        guard (0...120).contains(searchSeconds) else { throw ValidationError("--search-seconds must be between 0 and 120") }
        guard (1...10_000).contains(products) else { throw ValidationError("--products must be between 1 and 10000") }
        guard (1...20).contains(lines), lines <= products else {
            throw ValidationError("--lines must be between 1 and 20 and at most --products")
        }
    }

    struct Figure: Codable {
        var name: String
        var value: String
        var target: String
        var met: Bool?
    }

    private var workload: FlowRun.Workload { FlowRun.Workload(products: products, lines: lines) }

    func run() async throws {
        let logger = Logger(label: "postbox.bench")
        let progress: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("… \($0)\n".utf8)) }
        var figures: [Figure] = []
        var statements: String?
        var cpu: CPUPerOrder?
        var breakdown: FlowBreakdown?

        _ = try await ServiceBinaries.locate(build: !noBuild, note: progress)
        Bench.settleDisk(progress: progress)
        // Start-up.
        progress("start-up: embedded PostgreSQL, the four services, scenario database clones")
        let started = ContinuousClock.now
        let server = try await EmbeddedPostgres.start(
            .init(
                durability: .default,
                settings: statementStats ? StatementStats.serverSettings : [:]
            ),
            logger: logger
        )
        let postgresReady = ContinuousClock.now - started
        figures.append(.init(name: "PostgreSQL ready", value: ms(postgresReady), target: "-", met: nil))
        do {
            let system = try await PostboxSystem.create(name: "bench_startup", on: server)
            let servicesStarted = ContinuousClock.now
            try await system.startAll()
            let servicesReady = ContinuousClock.now - servicesStarted
            await system.shutdown()
            figures.append(.init(name: "four services ready (one after another)", value: ms(servicesReady), target: "-", met: nil))
            let allReady = postgresReady + servicesReady
            figures.append(.init(name: "PostgreSQL + four services ready", value: ms(allReady), target: "< 3 s", met: allReady < .seconds(3)))
            let clones = try await PostboxSystem.measureClone(times: 5).sorted()
            let worst = clones.last ?? .zero
            figures.append(
                .init(name: "scenario database clone (worst of 5)", value: ms(worst), target: "<= 300 ms", met: worst <= .milliseconds(300))
            )

            // Order flow at the steady rate.
            progress("order flow: \(rate) checkouts/s for \(duration) s after \(warmup) s of warm-up, one instance of each consumer")
            if statementStats { try await StatementStats.reset(on: server) }
            let steady = try await FlowRun.measure(
                server: server,
                workload: workload,
                rate: rate,
                seconds: duration,
                warmup: warmup,
                instances: 1,
                progress: progress
            )
            figures += steady.figures(prefix: "flow @\(rate)/s", targets: true)
            cpu = steady.cpu
            breakdown = steady.breakdown
            if statementStats {
                statements = try await StatementStats.table(on: server, per: steady.placed, perName: "order", logger: logger)
            }

            // Highest rate with p99 < 100 ms, with one and two instances of each consumer.
            if searchSeconds > 0 {
                for instances in [1, 2] {
                    var best = 0
                    for candidate in [25, 50, 75, 100, 150, 200, 300, 400, 600] {
                        progress("search: \(candidate)/s for \(searchSeconds) s with \(instances) instance(s) of each consumer")
                        let run = try await FlowRun.measure(
                            server: server,
                            workload: workload,
                            rate: candidate,
                            seconds: searchSeconds,
                            warmup: warmup,
                            instances: instances,
                            progress: progress
                        )
                        guard run.p99 < 100_000, run.achievedRate >= Double(candidate) * 0.95 else { break }
                        best = candidate
                    }
                    figures.append(
                        .init(
                            name: "highest rate with p99 < 100 ms, \(instances) instance(s) each",
                            value: "\(best)/s",
                            target: "-",
                            met: nil
                        )
                    )
                }
            }
        } catch {
            try? await server.stop()
            throw error
        }
        let machine = try await server.withConnection(database: "postgres") { connection in
            try await MachineDescription.read(connection: connection, logger: logger)
        }
        try await server.stop()
        if json {
            struct Output: Codable {
                var date: Date
                var machine: MachineDescription
                var workload: String
                var figures: [Figure]
                var cpuPerOrder: CPUPerOrder?
                var breakdown: FlowBreakdown?
            }
            print(
                try prettyJSON(
                    Output(
                        date: Date(),
                        machine: machine,
                        workload: workload.description(warmup: warmup),
                        figures: figures,
                        cpuPerOrder: cpu,
                        breakdown: breakdown
                    )
                )
            )
            return
        }
        print("postbox bench system — \(ISO8601DateFormatter().string(from: Date()))")
        print("machine: \(machine.summary)")
        print("workload: \(workload.description(warmup: warmup))")
        print("")
        print(column("figure", 58) + column("value", 14) + column("target", 12) + "met")
        for figure in figures {
            print(column(figure.name, 58) + column(figure.value, 14) + column(figure.target, 12) + (figure.met.map { $0 ? "yes" : "NO" } ?? "-"))
        }
        if let cpu { print("\nflow @\(rate)/s, while firing: \(cpu.summary)") }
        if let breakdown { print("\nflow @\(rate)/s, " + breakdown.summary) }
        if let statements { print("\n" + statements) }
    }
}

/// One open-loop run of the order flow on a fresh system.
struct FlowRun {
    var histogram: Histogram<UInt64>
    var achievedRate: Double
    var confirmed: Int
    var placed: Int
    /// CPU time each process used while the checkouts were fired, per order; nil without `/proc`.
    var cpu: CPUPerOrder?
    /// Each subscription's event waits and when the slow orders came.
    var breakdown: FlowBreakdown

    var p99: UInt64 { histogram.valueAtPercentile(99) }

    /// What the orders buy.
    struct Workload: Sendable {
        /// Products in the catalogue, each with ample stock.
        var products: Int
        /// Distinct products per order, one unit each, taken round-robin over the catalogue.
        var lines: Int

        var skus: [String] { (0..<products).map { String(format: "bench-%04d", $0) } }

        func items(forOrder index: Int) -> [(String, Int)] {
            (0..<lines).map { line in (skus[(index * lines + line) % products], 1) }
        }

        func description(warmup: Int) -> String {
            "\(lines) line(s) per order over \(products) product(s) round-robin, checkouts fired open loop; "
                + "each run's first \(warmup) s at its rate is warm-up, left out of its figures"
        }
    }

    /// Starts a fresh system, prepares one cart per checkout, fires checkouts at `rate` per second without waiting
    /// for answers, waits until every order is final, and reads each order's latency from the database: from the
    /// checkout's transaction to the transaction that confirmed it (both on PostgreSQL's clock).
    ///
    /// The first `warmup` seconds of checkouts run at the same rate, straight into the measured ones, and are left
    /// out of every figure: they fall while the services' connection pools are still opening, which a steady
    /// state does not see. Orders, which served the carts' preparation, is restarted before the firing begins.
    static func measure(
        server: EmbeddedPostgres,
        workload: Workload,
        rate: Int,
        seconds: Int,
        warmup: Int,
        instances: Int,
        progress: @escaping @Sendable (String) -> Void
    ) async throws -> FlowRun {
        let system = try await PostboxSystem.create(name: "bench_flow", on: server)
        do {
            try await system.startAll(instances: instances)
            let shop = Shop(system: system)
            for sku in workload.skus { try await shop.product(sku, priceCents: 1250, stock: 1_000_000_000) }
            let total = rate * seconds
            let warmupTotal = rate * warmup
            progress("preparing \(warmupTotal + total) carts")
            let customers = try await (0..<20).asyncMap { _ in try await shop.customer() }
            var carts: [(UUID, Shop.Customer)] = []
            try await withThrowingTaskGroup(of: (UUID, Shop.Customer).self) { group in
                var inFlight = 0
                for index in 0..<(warmupTotal + total) {
                    if inFlight >= 16, let cart = try await group.next() {
                        carts.append(cart)
                        inFlight -= 1
                    }
                    let customer = customers[index % customers.count]
                    let items = workload.items(forOrder: index)
                    group.addTask { (try await shop.cart(for: customer, items: items), customer) }
                    inFlight += 1
                }
                for try await cart in group { carts.append(cart) }
            }
            let warmupCarts = carts.prefix(warmupTotal).map(\.0)
            // Preparing the carts leased orders' connections over a thousand times a second (about 20,000 times for a
            // 60 s run at 100/s), and PostgresNIO's pool starts a 60 s idle-timeout timer at every release, which
            // fires even when the next lease has cancelled it. Those timers would fall due inside the measured window
            // and cost orders about a third more CPU for as long as the preparation took. Restarted, orders begins the
            // run as a freshly started service does, and the warm-up covers its reconnecting.
            try await system.restart("orders")
            progress("firing \(warmupTotal) warm-up and \(total) measured checkouts at \(rate)/s")
            let firstDue = ContinuousClock.now
            var cpuBefore: [(String, Duration)] = []
            var start = firstDue
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, (cart, customer)) in carts.enumerated() {
                    let due = firstDue + .nanoseconds(Int64(index) * 1_000_000_000 / Int64(rate))
                    try await Task.sleep(until: due)
                    if index == warmupTotal {
                        cpuBefore = CPUPerOrder.sample(system: system, server: server)
                        start = ContinuousClock.now
                    }
                    group.addTask { _ = try await shop.checkout(cart, customer: customer) }
                }
                try await group.waitForAll()
            }
            let cpu = CPUPerOrder(
                before: cpuBefore,
                after: CPUPerOrder.sample(system: system, server: server),
                wall: ContinuousClock.now - start,
                orders: total
            )
            try await system.quiesce(timeout: .seconds(300))
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            let (first, last, confirmed) = try await system.withDatabase { db in
                var first = Double.greatestFiniteMagnitude
                var last = 0.0
                var confirmed = 0
                for try await (createdAt, micros) in try await db.query(
                    """
                    SELECT extract(epoch FROM created_at)::float8, (extract(epoch FROM updated_at - created_at) * 1000000)::bigint
                    FROM orders.orders WHERE status = 'confirmed' AND NOT cart_id = ANY(\(warmupCarts))
                    """,
                    logger: Logger(label: "postbox.bench")
                ).decode((Double, Int).self) {
                    _ = histogram.record(UInt64(max(micros, 1)))
                    first = min(first, createdAt)
                    last = max(last, createdAt)
                    confirmed += 1
                }
                return (first, last, confirmed)
            }
            let breakdown = try await system.withDatabase { db in
                try await FlowBreakdown.read(on: db, since: first - 0.001, excludingCarts: warmupCarts, logger: Logger(label: "postbox.bench"))
            }
            await system.shutdown()
            await system.dropDatabase()
            let span = max(last - first, 0.001)
            return FlowRun(
                histogram: histogram,
                achievedRate: Double(max(confirmed - 1, 1)) / span,
                confirmed: confirmed,
                placed: total,
                cpu: cpu,
                breakdown: breakdown
            )
        } catch {
            await system.shutdown()
            throw error
        }
    }

    func figures(prefix: String, targets: Bool) -> [SystemBench.Figure] {
        let p50 = histogram.valueAtPercentile(50)
        let p90 = histogram.valueAtPercentile(90)
        let p99 = histogram.valueAtPercentile(99)
        return [
            .init(name: "\(prefix): confirmed / placed", value: "\(confirmed)/\(placed)", target: "all", met: confirmed == placed),
            .init(name: "\(prefix): achieved rate", value: String(format: "%.0f/s", achievedRate), target: "-", met: nil),
            .init(
                name: "\(prefix): p50 placed → confirmed",
                value: ms(micros: p50),
                target: targets ? "< 20 ms" : "-",
                met: targets ? p50 < 20_000 : nil
            ),
            .init(name: "\(prefix): p90", value: ms(micros: p90), target: "-", met: nil),
            .init(name: "\(prefix): p99", value: ms(micros: p99), target: targets ? "< 100 ms" : "-", met: targets ? p99 < 100_000 : nil),
            .init(name: "\(prefix): max", value: ms(micros: histogram.maxRecorded), target: "-", met: nil),
        ]
            + (cpu.map { cpu in
                [
                    .init(
                        name: "\(prefix): CPU per order, all processes",
                        value: String(format: "%.1f ms", cpu.totalMilliseconds),
                        target: "-",
                        met: nil
                    ),
                    .init(
                        name: "\(prefix): cores busy",
                        value: String(format: "%.0f%% of %d", cpu.busyShare * 100, cpu.cores),
                        target: "-",
                        met: nil
                    ),
                ]
            } ?? [])
    }
}

private func ms(_ duration: Duration) -> String {
    String(format: "%.0f ms", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
}

private func ms(micros: UInt64) -> String { String(format: "%.1f ms", Double(micros) / 1000) }

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
