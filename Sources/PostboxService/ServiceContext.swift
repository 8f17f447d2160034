public import Logging
public import PostboxBus
public import PostgresNIO
public import Prometheus

/// What a service's builder receives: its settings, database client, bus, logger and metrics registry.
public struct ServiceContext: Sendable {
    /// The service's name (`orders`), used in logs and as its bus subscription's name.
    public let name: String
    /// The settings every service reads.
    public let settings: ServiceSettings
    /// The pool for the service's own schema and the bus.
    public let client: PostgresClient
    /// The bus, running in the same service group.
    public let bus: MessageBus
    /// The service's logger, with `service` metadata.
    public let logger: Logger
    /// Where `GET /metrics` reads from.
    public let metrics: PrometheusCollectorRegistry

    /// Creates a context; `ServiceMain` makes one at start, tests make their own.
    public init(
        name: String,
        settings: ServiceSettings,
        client: PostgresClient,
        bus: MessageBus,
        logger: Logger,
        metrics: PrometheusCollectorRegistry
    ) {
        self.name = name
        self.settings = settings
        self.client = client
        self.bus = bus
        self.logger = logger
        self.metrics = metrics
    }
}
