import Foundation
import Hummingbird
import PostboxBus
import PostboxContracts
import PostboxService
import PostgresNIO

/// Carts: `POST /carts`, `GET /carts/{id}`, `POST /carts/{id}/items`, `POST /carts/{id}/checkout`.
struct CartsController: Sendable {
    let bus: MessageBus
    let client: PostgresClient
    let repository: OrdersRepository
    let authenticator: CustomerAuthenticator

    func add(to routes: RouteCollection<ServiceRequestContext>) {
        routes.post("/carts", use: create)
        routes.get("/carts/:id", use: show)
        routes.post("/carts/:id/items", use: addItem)
        routes.post("/carts/:id/checkout", use: checkout)
    }

    struct CartCreated: ResponseEncodable, Decodable {
        var id: UUID
    }

    struct CartView: ResponseEncodable, Decodable {
        var id: UUID
        var status: String
        var items: [OrderLine]
        var totalCents: Int

        init(_ cart: CartRecord) {
            id = cart.id
            status = cart.status
            items = cart.items
            totalCents = cart.items.reduce(0) { $0 + $1.quantity * max($1.priceCents, 0) }
        }
    }

    struct ItemInput: Decodable {
        var sku: String
        var quantity: Int
    }

    struct CheckoutInput: Decodable {
        var paymentToken: String
    }

    struct CheckoutAccepted: ResponseEncodable, Decodable {
        var orderId: UUID
        var status: String
    }

    @Sendable func create(request: Request, context: ServiceRequestContext) async throws -> EditedResponse<CartCreated> {
        let customer = try await authenticator.customer(request, context: context)
        let id = try await client.withConnection { connection in
            try await repository.createCart(customerId: customer, on: connection, logger: context.logger)
        }
        return EditedResponse(status: .created, response: CartCreated(id: id))
    }

    @Sendable func show(request: Request, context: ServiceRequestContext) async throws -> CartView {
        let customer = try await authenticator.customer(request, context: context)
        let id = try context.parameters.require("id", as: UUID.self)
        let cart = try await client.withConnection { connection in
            try await repository.cart(id: id, customerId: customer, on: connection, logger: context.logger)
        }
        guard let cart else { throw Problem(.notFound, "no cart \(id) for this customer") }
        return CartView(cart)
    }

    @Sendable func addItem(request: Request, context: ServiceRequestContext) async throws -> CartView {
        let customer = try await authenticator.customer(request, context: context)
        let id = try context.parameters.require("id", as: UUID.self)
        let input = try await request.decode(as: ItemInput.self, context: context)
        guard (1...1000).contains(input.quantity) else {
            throw Problem(.unprocessableContent, "quantity must be between 1 and 1000, got \(input.quantity)")
        }
        let cart = try await client.withTransaction(logger: context.logger) { connection -> CartRecord in
            guard let cart = try await repository.cart(id: id, customerId: customer, forUpdate: true, on: connection, logger: context.logger) else {
                throw Problem(.notFound, "no cart \(id) for this customer")
            }
            guard cart.status == "open" else { throw Problem(.conflict, "cart \(id) is already checked out") }
            guard try await repository.catalogueHas(sku: input.sku, on: connection, logger: context.logger) else {
                throw Problem(.unprocessableContent, "unknown sku '\(input.sku)'")
            }
            let total = try await repository.addItem(cartId: id, sku: input.sku, quantity: input.quantity, on: connection, logger: context.logger)
            guard total <= 1000 else {
                throw Problem(.unprocessableContent, "at most 1000 of one sku fit in a cart; this would make \(total)")
            }
            guard let updated = try await repository.cart(id: id, customerId: customer, on: connection, logger: context.logger) else {
                throw OrdersRepositoryError("cart \(id) vanished")
            }
            return updated
        }
        return CartView(cart)
    }

    @Sendable func checkout(request: Request, context: ServiceRequestContext) async throws -> EditedResponse<CheckoutAccepted> {
        let customer = try await authenticator.customer(request, context: context)
        let id = try context.parameters.require("id", as: UUID.self)
        let key = request.headers[.idempotencyKey]?.trimmingCharacters(in: .whitespaces)
        if let key, key.isEmpty || key.count > 200 {
            throw Problem(.badRequest, "Idempotency-Key must be 1 to 200 characters")
        }
        let input = try await request.decode(as: CheckoutInput.self, context: context)
        let token = input.paymentToken.trimmingCharacters(in: .whitespaces)
        guard (1...200).contains(token.count) else {
            throw Problem(.unprocessableContent, "paymentToken must be 1 to 200 characters")
        }
        let event = PlacedOrderEvent(
            id: .timeOrdered(),
            correlationId: context.correlationId,
            traceparent: context.trace.traceparent,
            traceId: context.trace.traceId,
            paymentToken: token
        )
        let accepted: CheckoutAccepted
        if let key {
            accepted = try await bus.withTransaction { transaction -> CheckoutAccepted in
                let connection = try await transaction.connection
                // Under the cart's lock, so that a retry racing the first attempt finds its order.
                guard try await repository.cart(id: id, customerId: customer, forUpdate: true, on: connection, logger: context.logger) != nil
                else { throw Problem(.notFound, "no cart \(id) for this customer") }
                if let replayed = try await replay(key: key, cart: id, customer: customer, on: connection, logger: context.logger) {
                    return replayed
                }
                let placed = try await place(cart: id, customer: customer, key: key, event: event, on: connection, logger: context.logger)
                transaction.wakeConsumersAfterCommit(of: [OrderPlaced.eventType])
                return placed
            }
        } else {
            // One statement, committing on its own: the order, its lines, the closed cart and the event.
            accepted = try await bus.client.withConnection { connection in
                let placed = try await place(cart: id, customer: customer, key: nil, event: event, on: connection, logger: context.logger)
                await bus.wakeConsumers(of: [OrderPlaced.eventType], on: connection)
                return placed
            }
        }
        CrashPoint.reached("orders.after-commit-before-response", logger: context.logger)
        return EditedResponse(status: .accepted, response: accepted)
    }

    /// Places the order of the cart and publishes its `order.placed` (one statement); a refusal as a problem, which
    /// places nothing.
    private func place(
        cart id: UUID,
        customer: UUID,
        key: String?,
        event: PlacedOrderEvent,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> CheckoutAccepted {
        let orderId = UUID()
        guard
            let placement = try await repository.placeOrder(
                id: orderId,
                cartId: id,
                customerId: customer,
                idempotencyKey: key,
                event: event,
                on: connection,
                logger: logger
            )
        else { throw Problem(.notFound, "no cart \(id) for this customer") }
        let cart = placement.cart
        guard let total = placement.totalCents else {
            guard cart.status == "open" else {
                let orderId = try await repository.orderId(cartId: id, on: connection, logger: logger)
                throw Problem(.conflict, "cart \(id) is already checked out" + (orderId.map { " as order \($0)" } ?? ""))
            }
            guard !cart.items.isEmpty else { throw Problem(.unprocessableContent, "cart \(id) is empty") }
            if let gone = cart.items.first(where: { $0.priceCents < 0 }) {
                throw Problem(.unprocessableContent, "sku '\(gone.sku)' is no longer in the catalogue")
            }
            throw OrdersRepositoryError("cart \(id) was open with every item priced, yet no order was placed")
        }
        logger.info("order placed", metadata: ["order.id": "\(orderId)", "order.total_cents": "\(total)"])
        return CheckoutAccepted(orderId: orderId, status: "pending")
    }

    /// The order an earlier checkout with this Idempotency-Key placed, if any; 422 if that was another cart's.
    private func replay(key: String, cart: UUID, customer: UUID, on connection: PostgresConnection, logger: Logger) async throws -> CheckoutAccepted?
    {
        guard let existing = try await repository.orderId(customerId: customer, idempotencyKey: key, on: connection, logger: logger) else {
            return nil
        }
        let order = try await repository.order(id: existing, customerId: customer, on: connection, logger: logger)
        guard let order, order.id == existing else { throw OrdersRepositoryError("order \(existing) vanished") }
        if try await repository.orderId(cartId: cart, on: connection, logger: logger) != existing {
            throw Problem(.unprocessableContent, "Idempotency-Key '\(key)' was already used for another cart's checkout")
        }
        return CheckoutAccepted(orderId: existing, status: order.status)
    }
}

extension CartsController.CartView: Equatable {}
