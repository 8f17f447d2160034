public import EmbeddedPostgres
public import Foundation
import Logging
public import PostboxHarness
import PostboxService
public import PostgresNIO
import Synchronization
public import SystemPackage

/// One scenario's world: a fresh database on the run's embedded PostgreSQL, and the service processes the scenario
/// starts on free ports — optionally behind a ``TCPFaultProxy`` to PostgreSQL.
///
/// Everything the scenario does to it (starting, killing, pausing, faults) is recorded with a timestamp for the
/// report's timeline. ``shutdown()`` stops every process and proxy, whatever happened before.
public final class PostboxSystem: Sendable {
    /// A fault or action the harness applied, for the timeline.
    public struct Action: Sendable {
        /// When.
        public var at: Date
        /// Which process (or `postgres`, `harness`).
        public var target: String
        /// What was done to it.
        public var what: String
    }

    /// The lab's PostgreSQL, one per process, started on first use and removed when the process exits.
    public let server: EmbeddedPostgres
    /// This scenario's database.
    public let database: String
    /// Where the service executables are.
    public let binaries: FilePath
    private let state = Mutex<State>(State())

    private struct State {
        var processes: [String: ManagedProcess] = [:]
        var order: [String] = []
        var ports: [String: Int] = [:]
        var proxies: [String: TCPFaultProxy] = [:]
        var actions: [Action] = []
        var initialStock: [String: Int] = [:]
        var standIns: [StandIn] = []
    }

    static let logger: Logger = {
        var logger = Logger(label: "postbox.lab")
        logger.logLevel = .error
        return logger
    }()

    private init(server: EmbeddedPostgres, database: String, binaries: FilePath) {
        self.server = server
        self.database = database
        self.binaries = binaries
    }

    /// A fresh database (roles, schemas and the bus ready) for the scenario `name`.
    public static func create(name: String, binaries: FilePath = ExecutableDirectory.current) async throws -> PostboxSystem {
        let server = try await Templates.shared.server()
        let database = try await Templates.shared.factory(server: server).makeDatabase(prefix: "lab_" + name.replacingOccurrences(of: "-", with: "_"))
        return PostboxSystem(server: server, database: database, binaries: binaries)
    }

    /// A fresh database on `server` (for example one with production durability, for benchmarks), set up by
    /// `SchemaSetup` without a template.
    public static func create(
        name: String,
        on server: EmbeddedPostgres,
        binaries: FilePath = ExecutableDirectory.current
    ) async throws -> PostboxSystem {
        let database = "\(name)_\(UUID().uuidString.prefix(8).lowercased())"
        try await server.createDatabase(database)
        try await SchemaSetup.prepare(configuration: server.configuration(database: database), logger: logger)
        return PostboxSystem(server: server, database: database, binaries: binaries)
    }

    /// How long it takes to clone a scenario database from the lab's template (after the first, which prepares it).
    public static func measureClone(times: Int) async throws -> [Duration] {
        let server = try await Templates.shared.server()
        let factory = await Templates.shared.factory(server: server)
        _ = try await factory.makeDatabase(prefix: "clone_warmup")
        var durations: [Duration] = []
        for _ in 0..<times {
            let started = ContinuousClock.now
            let name = try await factory.makeDatabase(prefix: "clone")
            durations.append(ContinuousClock.now - started)
            try await server.dropDatabase(name)
        }
        return durations
    }

    // MARK: Processes

    /// Starts instance `index` of `service` and waits until it answers `/ready` (unless `waitUntilReady` is false).
    ///
    /// - Parameters:
    ///   - proxied: Connect it to PostgreSQL through a fault proxy (see ``proxy(_:)``), starting in `proxyMode`.
    ///   - environment: Extra variables, such as `POSTBOX_CRASH_POINTS`.
    @discardableResult
    public func start(
        _ service: SystemService,
        instance index: Int = 1,
        proxied: Bool = false,
        proxyMode: TCPFaultProxy.Mode = .pass,
        environment: [String: String] = [:],
        waitUntilReady: Bool = true
    ) async throws -> ManagedProcess {
        let label = service.label(index)
        if let existing = state.withLock({ $0.processes[label] }) {
            existing.updateEnvironment { $0.merge(environment) { $1 } }
            let started = Date()
            await existing.start()
            record(label, "started again")
            if waitUntilReady {
                try await learnPort(label, of: existing, since: started)
                try await waitReady(label)
            }
            return existing
        }
        var databasePort = server.port
        if proxied {
            let proxy = try await TCPFaultProxy.start(targetPort: server.port)
            proxy.set(proxyMode)
            state.withLock { $0.proxies[label] = proxy }
            databasePort = proxy.port
        }
        var variables = [
            "DATABASE_URL": "postgres://\(service.role)@127.0.0.1:\(databasePort)/\(database)",
            "HTTP_HOST": "127.0.0.1",
            // Port 0: the service binds a free port and logs it; a port picked here could be taken meanwhile by
            // a process of another test.
            "HTTP_PORT": "0",
            "LOG_LEVEL": "info",
            "INSTANCE_NAME": label,
            "POSTBOX_PARENT_PID": "\(getpid())",
        ]
        if service == .payments {
            guard let gateway = state.withLock({ $0.ports[SystemService.paymentGateway.label(1)] }) else {
                throw LabError("start payment-gateway before payments")
            }
            variables["PAYMENT_GATEWAY_URL"] = "http://127.0.0.1:\(gateway)"
            variables["PAYMENT_GATEWAY_TIMEOUT_MS"] = "1000"
        }
        let process = ManagedProcess(
            name: label,
            executable: binaries.appending(service.executable),
            environment: variables.merging(environment) { $1 }
        )
        state.withLock {
            $0.processes[label] = process
            $0.order.append(label)
        }
        let started = Date()
        await process.start()
        record(label, "started" + (proxied ? " behind a fault proxy" : ""))
        if waitUntilReady {
            try await learnPort(label, of: process, since: started)
            try await waitReady(label)
        }
        return process
    }

    /// Starts the card-processor stand-in, inventory, orders and payments (`instances` of each consumer).
    public func startAll(instances: Int = 1, environment: [SystemService: [String: String]] = [:]) async throws {
        try await start(.paymentGateway, environment: environment[.paymentGateway] ?? [:])
        for index in 1...instances {
            for service in [SystemService.inventory, .orders, .payments] {
                try await start(service, instance: index, environment: environment[service] ?? [:])
            }
        }
    }

    /// Reads the port a run of the process logged (`http.port=N … listening`) and keeps it for its later runs.
    private func learnPort(_ label: String, of process: ManagedProcess, since: Date) async throws {
        var port: Int?
        try await eventually("\(label) to say where it listens", timeout: .seconds(30), diagnostic: { process.tail() }) {
            port = process.lines.last { $0.at >= since && $0.text.hasSuffix("listening") }
                .flatMap { line in line.text.split(separator: " ").first { $0.hasPrefix("http.port=") } }
                .flatMap { Int($0.dropFirst("http.port=".count)) }
            if port == nil, !process.isRunning, process.exits.last.map({ $0.at >= since }) == true {
                throw LabError("\(label) exited before listening: \(process.tail())")
            }
            return port != nil
        }
        guard let port else { return }
        state.withLock { $0.ports[label] = port }
        process.updateEnvironment { $0["HTTP_PORT"] = "\(port)" }
    }

    /// Waits until the process `label` answers `/ready`.
    public func waitReady(_ label: String, timeout: Duration = .seconds(30)) async throws {
        if state.withLock({ $0.ports[label] }) == nil, let process = process(label) {
            try await learnPort(label, of: process, since: .distantPast)
        }
        let port = try port(label)
        try await eventually("\(label) ready", timeout: timeout, diagnostic: { self.process(label)?.tail() ?? "" }) {
            await Shop.isReady(port: port)
        }
    }

    /// The process `label` (`orders`, `payments-2`), if started.
    public func process(_ label: String) -> ManagedProcess? { state.withLock { $0.processes[label] } }

    /// Every process, in the order started.
    public var processes: [ManagedProcess] { state.withLock { state in state.order.compactMap { state.processes[$0] } } }

    /// The HTTP port of `label`.
    public func port(_ label: String) throws -> Int {
        guard let port = state.withLock({ $0.ports[label] }) else { throw LabError("\(label) was never started") }
        return port
    }

    /// `http://127.0.0.1:<port>` of `label`.
    public func url(_ label: String) throws -> String { "http://127.0.0.1:\(try port(label))" }

    /// The fault proxy between `label` and PostgreSQL (started with `proxied: true`).
    public func proxy(_ label: String) throws -> TCPFaultProxy {
        guard let proxy = state.withLock({ $0.proxies[label] }) else { throw LabError("\(label) was not started behind a proxy") }
        return proxy
    }

    // MARK: Faults

    /// SIGKILL, and waits until the process is gone.
    public func kill(_ label: String) async throws {
        guard let process = process(label) else { throw LabError("no process \(label)") }
        record(label, "SIGKILL")
        await process.kill()
    }

    /// SIGSTOP: the process freezes, holding its connections and leases.
    public func pause(_ label: String) throws {
        guard let process = process(label) else { throw LabError("no process \(label)") }
        record(label, "SIGSTOP")
        process.signal(SIGSTOP)
    }

    /// SIGCONT.
    public func resume(_ label: String) throws {
        guard let process = process(label) else { throw LabError("no process \(label)") }
        record(label, "SIGCONT")
        process.signal(SIGCONT)
    }

    /// Starts a stopped or killed process again with its environment, minus any armed crash points.
    public func restart(_ label: String, keepCrashPoints: Bool = false) async throws {
        guard let process = process(label) else { throw LabError("no process \(label)") }
        if !keepCrashPoints { process.updateEnvironment { $0[CrashPoint.variable] = nil } }
        if process.isRunning { await process.stop() }
        let started = Date()
        await process.start()
        record(label, "restarted")
        try await learnPort(label, of: process, since: started)
        try await waitReady(label)
    }

    /// Restarts PostgreSQL itself (`fast`: clean shutdown; `immediate`: as after a crash, with recovery).
    public func restartPostgres(_ mode: EmbeddedPostgres.ShutdownMode) async throws {
        record("postgres", "restart (\(mode.rawValue))")
        try await server.restart(mode)
    }

    /// Sets the fault proxy of `label` to `mode`.
    public func network(_ label: String, _ mode: TCPFaultProxy.Mode) throws {
        record(label, "network: \(mode)")
        try proxy(label).set(mode)
    }

    /// Resets every connection between `label` and PostgreSQL.
    public func resetConnections(_ label: String) throws {
        record(label, "network: connections reset")
        try proxy(label).resetConnections()
    }

    /// Records an action for the timeline.
    public func record(_ target: String, _ what: String) {
        state.withLock { $0.actions.append(Action(at: Date(), target: target, what: what)) }
    }

    /// Everything the harness did, in order.
    public var actions: [Action] { state.withLock { $0.actions } }

    // MARK: Stock bookkeeping

    /// Notes the stock a product was created with, for the stock-conservation invariant.
    public func noteInitialStock(sku: String, stock: Int) {
        state.withLock { $0.initialStock[sku] = stock }
    }

    /// The stock each product was created with.
    public var initialStock: [String: Int] { state.withLock { $0.initialStock } }

    // MARK: Database

    /// Runs `body` on a connection to this scenario's database as the superuser.
    public func withDatabase<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        try await server.withConnection(database: database, body)
    }

    func addStandIn(_ standIn: StandIn) {
        state.withLock { $0.standIns.append(standIn) }
    }

    /// Stops every process (SIGTERM, then SIGKILL) and proxy; returns how each process's last run ended.
    @discardableResult
    public func shutdown() async -> [String: ManagedProcess.Exit] {
        let (processes, proxies, standIns) = state.withLock { state in
            (state.order.compactMap { state.processes[$0] }, Array(state.proxies.values), state.standIns)
        }
        for standIn in standIns { await standIn.stop() }
        for process in processes where process.isRunning { process.signal(SIGCONT) }
        var exits: [String: ManagedProcess.Exit] = [:]
        await withTaskGroup(of: (String, ManagedProcess.Exit?).self) { group in
            for process in processes {
                group.addTask { (process.name, await process.stop(grace: .seconds(10))) }
            }
            for await (name, exit) in group { exits[name] = exit }
        }
        for proxy in proxies { await proxy.stop() }
        return exits
    }

    /// Drops the scenario's database (after a passing run).
    public func dropDatabase() async {
        try? await server.dropDatabase(database)
    }
}

/// Something the scenario or the harness could not do.
public struct LabError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The lab's own PostgreSQL (scenarios restart it, so it is not the one other tests of the process share) and the
/// template every scenario database is cloned from: roles, schemas, grants and the bus.
actor Templates {
    static let shared = Templates()
    private var factory: DatabaseFactory?
    private var starting: Task<EmbeddedPostgres, any Error>?

    func server() async throws -> EmbeddedPostgres {
        if let starting { return try await starting.value }
        let task = Task { try await EmbeddedPostgres.start(.init(durability: .fast), logger: PostboxSystem.logger) }
        starting = task
        return try await task.value
    }

    func factory(server: EmbeddedPostgres) -> DatabaseFactory {
        if let factory { return factory }
        let created = DatabaseFactory(server: server, templateName: "lab_template", logger: PostboxSystem.logger) { config, logger in
            try await SchemaSetup.prepare(configuration: config, logger: logger)
        }
        factory = created
        return created
    }
}
