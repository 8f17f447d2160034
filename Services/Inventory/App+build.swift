import PostboxBus
import PostboxContracts
import PostboxService

/// The inventory service's routes and its one consumer.
func buildInventory(_ context: ServiceContext) -> ServiceParts {
    let products = ProductRepository()
    let controller = ProductsController(bus: context.bus, client: context.client, products: products)
    let handler = StockHandler(products: products, logger: context.logger)
    let consumer = context.bus.consumer(StockHandler.subscription) { event, transaction in
        try await handler.handle(event, in: transaction)
    }
    return ServiceParts(routes: controller.routes, consumers: [consumer])
}
