import Foundation
import Hummingbird
import PostboxBus
import PostboxContracts
import PostboxService
import PostgresNIO

/// `GET /orders/{id}` and `POST /orders/{id}/cancel`, for the customer who placed the order.
struct OrdersController: Sendable {
    let bus: MessageBus
    let client: PostgresClient
    let repository: OrdersRepository
    let authenticator: CustomerAuthenticator

    func add(to routes: RouteCollection<ServiceRequestContext>) {
        routes.get("/orders/:id", use: show)
        routes.post("/orders/:id/cancel", use: cancel)
    }

    /// An order as the API shows it.
    struct OrderView: ResponseEncodable, Decodable, Equatable {
        var id: UUID
        var status: String
        var reason: String?
        var lines: [OrderLine]
        var totalCents: Int
        /// True once the customer asked to cancel a confirmed order and the refund is under way.
        var cancellationRequested: Bool

        init(_ order: OrderRecord) {
            id = order.id
            status = order.status
            reason = order.reason
            lines = order.lines
            totalCents = order.totalCents
            cancellationRequested = order.cancellationRequested
        }
    }

    @Sendable func show(request: Request, context: ServiceRequestContext) async throws -> OrderView {
        let customer = try await authenticator.customer(request, context: context)
        let id = try context.parameters.require("id", as: UUID.self)
        let order = try await client.withConnection { connection in
            try await repository.order(id: id, customerId: customer, on: connection, logger: context.logger)
        }
        guard let order else { throw Problem(.notFound, "no order \(id) for this customer") }
        return OrderView(order)
    }

    /// Cancels a confirmed order: payments refunds it, inventory takes the stock back, and the order becomes
    /// `cancelled` when the refund is done. Asking again changes nothing.
    @Sendable func cancel(request: Request, context: ServiceRequestContext) async throws -> EditedResponse<OrderView> {
        let customer = try await authenticator.customer(request, context: context)
        let id = try context.parameters.require("id", as: UUID.self)
        let order = try await bus.withTransaction { transaction -> OrderRecord in
            guard
                var order = try await repository.order(
                    id: id,
                    customerId: customer,
                    forUpdate: true,
                    on: transaction.connection,
                    logger: context.logger
                )
            else {
                throw Problem(.notFound, "no order \(id) for this customer")
            }
            switch order.status {
            case "pending":
                throw Problem(.conflict, "order \(id) is still being processed; cancel it once it is confirmed")
            case "rejected":
                throw Problem(.conflict, "order \(id) was rejected; there is nothing to cancel")
            case "confirmed" where !order.cancellationRequested:
                try await repository.markCancellationRequested(orderId: id, on: transaction.connection, logger: context.logger)
                try await transaction.publish(
                    context.envelope(OrderCancellationRequested(orderId: id), orderingKey: id.uuidString)
                )
                order.cancellationRequested = true
                context.logger.info("order cancellation requested", metadata: ["order.id": "\(id)"])
            default:
                break
            }
            return order
        }
        return EditedResponse(status: .accepted, response: OrderView(order))
    }
}
