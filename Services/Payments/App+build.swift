import Hummingbird
import PostboxBus
import PostboxService

/// The payments service's routes and its one consumer.
func buildPayments(_ context: ServiceContext, gateway settings: GatewaySettings) -> ServiceParts {
    let repository = PaymentsRepository()
    let routes = RouteCollection(context: ServiceRequestContext.self)
    PaymentsController(client: context.client, repository: repository).add(to: routes)
    let handler = PaymentHandler(
        repository: repository,
        gateway: GatewayClient(settings: settings),
        maxAttempts: PaymentHandler.subscription.maxAttempts,
        logger: context.logger
    )
    let consumer = context.bus.consumer(PaymentHandler.subscription) { event, transaction in
        try await handler.handle(event, in: transaction)
    }
    return ServiceParts(routes: routes, consumers: [consumer])
}
