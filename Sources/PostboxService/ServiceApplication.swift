public import Hummingbird
import Logging

extension ServiceContext {
    /// The service's router: tracing and problem middleware, request logs, HTTP metrics, the operational routes
    /// and the service's own routes. Tests drive it with HummingbirdTesting.
    public func router(parts: ServiceParts) -> Router<ServiceRequestContext> {
        let router = Router(context: ServiceRequestContext.self)
        router.addMiddleware {
            TracingMiddleware()
            ProblemMiddleware()
            LogRequestsMiddleware(.info)
            MetricsMiddleware()
        }
        OperationalRoutes(service: name, client: client, metrics: metrics).add(to: router)
        router.addRoutes(parts.routes)
        return router
    }

    /// The HTTP application on the configured host and port; it logs the port it listens on.
    public func application(parts: ServiceParts) -> some ApplicationProtocol {
        let logger = self.logger
        let name = self.name
        return Application(
            router: router(parts: parts),
            configuration: .init(address: .hostname(settings.httpHost, port: settings.httpPort), serverName: name),
            onServerRunning: { channel in
                logger.notice(
                    "listening",
                    metadata: ["http.host": "\(settings.httpHost)", "http.port": "\(channel.localAddress?.port ?? -1)"]
                )
            },
            logger: logger
        )
    }
}
