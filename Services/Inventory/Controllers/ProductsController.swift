import Foundation
import Hummingbird
import Logging
import PostboxBus
import PostboxContracts
import PostboxService
import PostgresNIO

/// `PUT /products/{sku}` and `GET /products/{sku}`.
struct ProductsController: Sendable {
    let bus: MessageBus
    let client: PostgresClient
    let products: ProductRepository

    var routes: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.put("/products/:sku", use: put)
        routes.get("/products/:sku", use: get)
        return routes
    }

    /// The body of `PUT /products/{sku}`.
    struct ProductInput: Decodable {
        var name: String
        var priceCents: Int
        /// Units on hand; may be left out when updating, to change only the name or price.
        var stock: Int?
    }

    /// A product as the API shows it.
    struct ProductView: ResponseEncodable, Decodable, Equatable {
        var sku: String
        var name: String
        var priceCents: Int
        var onHand: Int
        var reserved: Int
        var available: Int

        init(_ product: Product) {
            sku = product.sku
            name = product.name
            priceCents = product.priceCents
            onHand = product.onHand
            reserved = product.reserved
            available = product.available
        }
    }

    @Sendable func put(request: Request, context: ServiceRequestContext) async throws -> EditedResponse<ProductView> {
        let sku = try Self.sku(from: context)
        let input = try await request.decode(as: ProductInput.self, context: context)
        let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(name.count) else {
            throw Problem(.unprocessableContent, "name must be 1 to 200 characters")
        }
        guard (0...1_000_000_000).contains(input.priceCents) else {
            throw Problem(.unprocessableContent, "priceCents must be between 0 and 1000000000, got \(input.priceCents)")
        }
        if let stock = input.stock, !(0...1_000_000_000).contains(stock) {
            throw Problem(.unprocessableContent, "stock must be between 0 and 1000000000, got \(stock)")
        }
        do {
            let (product, created) = try await bus.withTransaction { transaction in
                let result = try await products.upsert(
                    sku: sku,
                    name: name,
                    priceCents: input.priceCents,
                    stock: input.stock,
                    on: transaction.connection,
                    logger: context.logger
                )
                let event = ProductUpserted(
                    sku: sku,
                    name: result.product.name,
                    priceCents: result.product.priceCents,
                    revision: result.product.revision
                )
                try await transaction.publish(context.envelope(event, orderingKey: sku))
                return result
            }
            return EditedResponse(status: created ? .created : .ok, response: ProductView(product))
        } catch is StockRequired {
            throw Problem(.unprocessableContent, "stock is required to create product \(sku)")
        } catch let error as StockBelowReserved {
            throw Problem(
                .conflict,
                "stock \(error.requested) is below the \(error.reserved) units reserved for orders in flight of \(error.sku)"
            )
        }
    }

    @Sendable func get(request: Request, context: ServiceRequestContext) async throws -> ProductView {
        let sku = try Self.sku(from: context)
        let product = try await client.withConnection { connection in
            try await products.product(sku: sku, on: connection, logger: context.logger)
        }
        guard let product else { throw Problem(.notFound, "no product with sku \(sku)") }
        return ProductView(product)
    }

    /// SKUs are 1 to 64 letters, digits, `-`, `_` or `.`.
    static func sku(from context: ServiceRequestContext) throws -> String {
        let sku = try context.parameters.require("sku")
        guard (1...64).contains(sku.count),
            sku.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) })
        else {
            throw Problem(.badRequest, "sku must be 1 to 64 letters, digits, '-', '_' or '.'")
        }
        return sku
    }
}
