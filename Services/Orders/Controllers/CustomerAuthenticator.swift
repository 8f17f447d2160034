import Foundation
import Hummingbird
import PostboxService
import PostgresNIO

/// Resolves `Authorization: Bearer <token>` to a customer id; 401 when it is missing or unknown. A token resolved
/// once is answered from memory after that (``CustomerTokenCache``): a query fewer on every later request.
struct CustomerAuthenticator: Sendable {
    let client: PostgresClient
    let repository: OrdersRepository
    let cache = CustomerTokenCache()

    func customer(_ request: Request, context: ServiceRequestContext) async throws -> UUID {
        let challenge: HTTPFields = [.wwwAuthenticate: "Bearer"]
        guard let header = request.headers[.authorization] else {
            throw Problem(.unauthorized, "missing Authorization: Bearer <token> (POST /customers gives one)", headers: challenge)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty, parts[1].count <= 200 else {
            throw Problem(.unauthorized, "the Authorization header must be 'Bearer <token>'", headers: challenge)
        }
        let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
        if let customer = cache.customer(for: token) { return customer }
        let customer = try await client.withConnection { connection in
            try await repository.customer(token: token, on: connection, logger: context.logger)
        }
        guard let customer else { throw Problem(.unauthorized, "unknown token", headers: challenge) }
        cache.remember(customer, for: token)
        return customer
    }
}
