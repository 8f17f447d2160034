import Hummingbird
import PostboxBus
import PostboxService

/// The orders service's routes and its one consumer.
func buildOrders(_ context: ServiceContext) -> ServiceParts {
    let repository = OrdersRepository()
    let authenticator = CustomerAuthenticator(client: context.client, repository: repository)
    let routes = RouteCollection(context: ServiceRequestContext.self)
    CustomersController(client: context.client, repository: repository).add(to: routes)
    CartsController(bus: context.bus, client: context.client, repository: repository, authenticator: authenticator)
        .add(to: routes)
    OrdersController(bus: context.bus, client: context.client, repository: repository, authenticator: authenticator)
        .add(to: routes)
    let handler = OrderEventsHandler(repository: repository, logger: context.logger)
    let consumer = context.bus.consumer(OrderEventsHandler.subscription) { event, transaction in
        try await handler.handle(event, in: transaction)
    }
    return ServiceParts(routes: routes, consumers: [consumer])
}
