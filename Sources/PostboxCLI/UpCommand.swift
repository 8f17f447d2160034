import ArgumentParser
import EmbeddedPostgres
import Foundation
import Logging
import PostboxScenarios
import PostboxService
import ServiceLifecycle
import SystemPackage
import UnixSignals

/// `postbox up`: PostgreSQL, the three services and the card-processor stand-in, with their logs in this terminal.
///
/// Ctrl-C (or SIGTERM) stops the services (SIGTERM, then SIGKILL after 8 s), then the embedded PostgreSQL, and
/// deletes a throwaway database, leaving no process or port behind.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run the whole system locally: embedded PostgreSQL, orders, inventory, payments, payment-gateway."
    )

    @Option(help: "Use this PostgreSQL (an administrator URL) instead of an embedded one.")
    var databaseURL: String?
    @Option(help: "Put the services on N+1 (orders), N+2 (inventory), N+3 (payments), N+4 (payment-gateway).")
    var portBase: Int = 8080
    @Option(help: "Keep the embedded database in this directory between runs (default: a throwaway one).")
    var dataDir: String?
    @Option(help: "Competing instances, e.g. orders=2,inventory=2,payments=2; extra ones listen from N+11 on.")
    var instances: String?
    @Option(help: "The services' log level (trace, debug, info, notice, warning, error).")
    var logLevel: String = "info"
    @Flag(help: "Do not run `swift build` first, even from a package checkout.")
    var noBuild = false

    func validate() throws {
        guard (1024...65000).contains(portBase) else { throw ValidationError("--port-base must be between 1024 and 65000") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do {
            _ = try parseInstances(instances)
            if let databaseURL { _ = try DatabaseURL(databaseURL) }
        } catch {
            throw ValidationError("\(error)")
        }
        if databaseURL != nil, dataDir != nil { throw ValidationError("--data-dir applies to the embedded database only") }
    }

    func run() async throws {
        let startedAt = ContinuousClock.now
        let planned = plannedInstances(portBase: portBase, counts: try parseInstances(instances))
        let printer = LogPrinter(labels: planned.map(\.label) + ["postgres"])
        let logger = {
            var logger = Logger(label: "postbox.up")
            logger.logLevel = .warning
            return logger
        }()
        for instance in planned where !FreePort.isFree(instance.port) {
            throw ValidationFailure("port \(instance.port) (\(instance.label)) is in use; pick another --port-base")
        }
        let binaries = try await ServiceBinaries.locate(build: !noBuild, printer: printer)
        let builtAt = ContinuousClock.now

        let server: EmbeddedPostgres?
        let admin: DatabaseURL
        if let databaseURL {
            server = nil
            admin = try DatabaseURL(databaseURL)
        } else {
            let started = try await EmbeddedPostgres.start(
                .init(durability: .default, dataDirectory: dataDir.map { FilePath($0) }),
                logger: logger
            )
            server = started
            if try await !started.databaseExists("postbox") { try await started.createDatabase("postbox") }
            admin = try DatabaseURL(started.url(database: "postbox"))
            printer.note("PostgreSQL \(started.installation.version) ready at \(admin) (\(dataDir == nil ? "throwaway" : "kept in \(dataDir!)"))")
        }
        do {
            try await SchemaSetup.prepare(configuration: admin.configuration, logger: logger)
            let table = ProcessTable(instances: planned, portBase: portBase, databaseURL: admin.text)
            let gatewayPort = planned.first { $0.process.name == "payment-gateway" }!.port
            let children = planned.map { instance in
                var environment = [
                    "DATABASE_URL": SchemaSetup.url(of: instance.process.role, like: admin),
                    "HTTP_HOST": "127.0.0.1",
                    "HTTP_PORT": "\(instance.port)",
                    "LOG_LEVEL": logLevel,
                    "INSTANCE_NAME": instance.label,
                    "POSTBOX_PARENT_PID": "\(getpid())",
                ]
                if instance.process.name == "payments" {
                    environment["PAYMENT_GATEWAY_URL"] = "http://127.0.0.1:\(gatewayPort)"
                }
                return ChildProcess(
                    instance: instance,
                    executable: binaries.appending(instance.process.name),
                    environment: environment,
                    table: table,
                    printer: printer
                )
            }
            let announcer = ReadinessAnnouncer(
                instances: planned,
                startedAt: startedAt,
                builtAt: builtAt,
                printer: printer
            )
            let group = ServiceGroup(
                configuration: .init(
                    services: children.map { .init(service: $0) } + [.init(service: announcer)],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
        } catch {
            UpState.remove(portBase: portBase)
            try? await server?.stop()
            throw error
        }
        UpState.remove(portBase: portBase)
        if let server {
            try await server.stop()
            printer.note("PostgreSQL stopped")
        }
        printer.note("all stopped")
    }
}

/// Waits until every instance answers `/ready`, prints where each listens and how long start-up took, then
/// stays until shutdown.
struct ReadinessAnnouncer: Service {
    let instances: [ProcessInstance]
    let startedAt: ContinuousClock.Instant
    let builtAt: ContinuousClock.Instant
    let printer: LogPrinter

    func run() async throws {
        // Cancelled at shutdown, which is how it is meant to end.
        try? await cancelWhenGracefulShutdown {
            var waiting = instances
            while !waiting.isEmpty {
                var still: [ProcessInstance] = []
                for instance in waiting where !(await Shop.isReady(port: instance.port)) { still.append(instance) }
                waiting = still
                if !waiting.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
            }
            let now = ContinuousClock.now
            printer.note(
                String(
                    format: "all %d processes ready in %.2f s (%.2f s after the build)",
                    instances.count,
                    seconds(now - startedAt),
                    seconds(now - builtAt)
                )
            )
            for instance in instances {
                printer.note("  \(instance.label.padding(toLength: 18, withPad: " ", startingAt: 0)) http://127.0.0.1:\(instance.port)")
            }
            printer.note("Ctrl-C stops everything")
            try await Task.sleep(for: .seconds(365 * 24 * 3600))
        }
    }
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
