import Foundation
import Hummingbird
import PostboxService
import PostgresNIO

/// `POST /customers`: a new customer and the bearer token that identifies them.
struct CustomersController: Sendable {
    let client: PostgresClient
    let repository: OrdersRepository

    func add(to routes: RouteCollection<ServiceRequestContext>) {
        routes.post("/customers", use: create)
    }

    /// The optional body of `POST /customers`.
    struct CustomerInput: Decodable {
        var name: String?
    }

    struct CustomerCreated: ResponseEncodable, Decodable {
        var id: UUID
        var token: String
    }

    @Sendable func create(request: Request, context: ServiceRequestContext) async throws -> EditedResponse<CustomerCreated> {
        var request = request
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        var name: String?
        if body.readableBytes > 0 {
            name = try await request.decode(as: CustomerInput.self, context: context).name?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if let given = name, given.count > 200 {
                throw Problem(.unprocessableContent, "name must be at most 200 characters")
            }
        }
        let created = try await client.withConnection { connection in
            try await repository.createCustomer(name: name, on: connection, logger: context.logger)
        }
        return EditedResponse(status: .created, response: CustomerCreated(id: created.id, token: created.token))
    }
}
