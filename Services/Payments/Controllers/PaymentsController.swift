import Foundation
import Hummingbird
import PostboxService
import PostgresNIO

/// `GET /payments?orderId=`: the payments of an order.
struct PaymentsController: Sendable {
    let client: PostgresClient
    let repository: PaymentsRepository

    func add(to routes: RouteCollection<ServiceRequestContext>) {
        routes.get("/payments", use: list)
    }

    struct PaymentView: Codable, Equatable {
        var id: UUID
        var orderId: UUID
        var amountCents: Int
        var status: String
    }

    @Sendable func list(request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let text = request.uri.queryParameters["orderId"] else {
            throw Problem(.badRequest, "the query parameter orderId is required: GET /payments?orderId=<uuid>")
        }
        guard let orderId = UUID(uuidString: String(text)) else {
            throw Problem(.badRequest, "orderId must be a UUID, got '\(text)'")
        }
        let payment = try await client.withConnection { connection in
            try await repository.payment(orderId: orderId, on: connection, logger: context.logger)
        }
        let views = payment.map { [PaymentView(id: $0.id, orderId: $0.orderId, amountCents: $0.amountCents, status: $0.status)] } ?? []
        return try context.responseEncoder.encode(views, from: request, context: context)
    }
}
