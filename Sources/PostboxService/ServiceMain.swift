import Foundation
import Hummingbird
import Logging
import Metrics
import NIOPosix
public import PostboxBus
import PostgresNIO
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The start-up every Postbox service shares: read settings (a bad value exits with status 78 and one line naming
/// the variable), set up logs and metrics, migrate the service's schema and register its subscriptions, then run the client, the bus, the
/// consumers and the HTTP server in one `ServiceGroup` until SIGTERM or SIGINT, and exit 0 after draining.
public enum ServiceMain {
    /// Exit status for a configuration error (`EX_CONFIG` from sysexits.h).
    public static let configurationErrorStatus: Int32 = 78

    /// Runs the service `name` and never returns.
    ///
    /// - Parameters:
    ///   - name: The service's name (logs, subscription name, `service` metric dimension).
    ///   - defaultPort: The HTTP port when `HTTP_PORT` is unset.
    ///   - usesBus: Whether the service publishes or consumes events; one that does not (the card-processor
    ///     stand-in) neither checks nor runs the bus, and must not use ``ServiceContext/bus``.
    ///   - schema: The service's own schema migrations, applied at start under an advisory lock.
    ///   - readSettings: Reads the service's own settings; throw ``ConfigurationError`` for a bad value.
    ///   - build: Makes the service's routes and consumers.
    public static func run<Extra: Sendable>(
        name: String,
        defaultPort: Int,
        usesBus: Bool = true,
        schema: SchemaMigrator?,
        readSettings: @Sendable (SettingsReader) throws -> Extra,
        build: @escaping @Sendable (ServiceContext, Extra) async throws -> ServiceParts
    ) async -> Never {
        // Tasks run on NIO's event loops instead of Swift's global pool: a service spends most of its time waiting
        // on PostgreSQL and HTTP, and each answer would otherwise hop from an event loop thread to a pool thread and
        // back. Installed before any other task starts. Nothing in a service may block a thread.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        let reader = SettingsReader.environment()
        let settings: ServiceSettings
        let extra: Extra
        do {
            settings = try ServiceSettings(reader: reader, defaultPort: defaultPort)
            extra = try readSettings(reader)
        } catch {
            FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
            exit(configurationErrorStatus)
        }
        let instance = settings.instanceName ?? "\(name)-\(ProcessInfo.processInfo.processIdentifier)"
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = settings.logLevel
            return handler
        }
        let logger = {
            var logger = Logger(label: name)
            logger.logLevel = settings.logLevel
            logger[metadataKey: "service"] = "\(name)"
            logger[metadataKey: "instance"] = "\(instance)"
            return logger
        }()
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        do {
            let client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: logger)
            let bus = MessageBus(
                client: client,
                configuration: .init(
                    instanceName: instance,
                    listenerConnection: settings.database.connectionConfiguration
                ),
                logger: logger
            )
            let context = ServiceContext(
                name: name,
                settings: settings,
                client: client,
                bus: bus,
                logger: logger,
                metrics: registry
            )
            let parts = try await build(context, extra)
            try await migrate(
                settings: settings,
                usesBus: usesBus,
                schema: schema,
                subscriptions: parts.consumers.map(\.subscription),
                logger: logger
            )
            let app = context.application(parts: parts)
            let services: [any Service] = [client] + (usesBus ? [bus] : []) + parts.consumers + parts.services + [app]
            let watch = ParentWatch.fromEnvironment(logger: logger).map {
                ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .gracefullyShutdownGroup)
            }
            let group = ServiceGroup(
                configuration: .init(
                    services: services.map { .init(service: $0) } + (watch.map { [$0] } ?? []),
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
            logger.notice("stopped")
            exit(0)
        } catch {
            logger.critical("service failed", metadata: ["error": "\(String(reflecting: error))"])
            exit(1)
        }
    }

    /// Applies the bus's and the service's migrations through a short-lived client, retrying the connection for
    /// up to 30 s so a service may start before its database.
    static func migrate(
        settings: ServiceSettings,
        usesBus: Bool,
        schema: SchemaMigrator?,
        subscriptions: [Subscription],
        logger: Logger
    ) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var delay = Duration.milliseconds(100)
        while true {
            do {
                // One direct connection first: it fails fast with the reason, where the pool would wait quietly.
                try await settings.database.checkConnection(logger: logger.quieted())
                try await SchemaSetup.migrate(
                    configuration: settings.database.configuration,
                    usesBus: usesBus,
                    schema: schema,
                    subscriptions: subscriptions,
                    logger: logger
                )
                return
            } catch let error as SchemaSetupError {
                throw error
            } catch {
                guard ContinuousClock.now < deadline else { throw error }
                logger.warning(
                    "database not reachable yet; retrying",
                    metadata: ["error": "\(error as? DatabaseFailure ?? DatabaseFailure(error, database: settings.database))"]
                )
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }
}
