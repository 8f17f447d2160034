public import Hummingbird
public import PostboxBus
public import ServiceLifecycle

/// What a service consists of: its routes and its bus consumers (plus any other long-running services).
public struct ServiceParts {
    /// The service's own routes; `ServiceMain` adds the operational ones and the middleware.
    public var routes: RouteCollection<ServiceRequestContext>
    /// Consumers to run after the bus and before the HTTP server.
    public var consumers: [Consumer]
    /// Other services to run beside the consumers.
    public var services: [any Service]

    /// Creates the parts.
    public init(routes: RouteCollection<ServiceRequestContext>, consumers: [Consumer] = [], services: [any Service] = []) {
        self.routes = routes
        self.consumers = consumers
        self.services = services
    }
}
