import Foundation
public import PostboxBus

/// `product.upserted`: inventory created a product or changed its name, price or stock.
///
/// Published with the SKU as ordering key; `revision` grows with every change, so a consumer keeps the newest.
public struct ProductUpserted: EventPayload, Equatable {
    /// The topic, `product.upserted`.
    public static let eventType = "product.upserted"
    /// The schema version this type produces.
    public static let eventVersion = 1

    /// The product.
    public var sku: String
    /// The name.
    public var name: String
    /// The unit price, in cents.
    public var priceCents: Int
    /// Increases with every change of this product.
    public var revision: Int64

    /// Creates the value from its parts.
    public init(sku: String, name: String, priceCents: Int, revision: Int64) {
        self.sku = sku
        self.name = name
        self.priceCents = priceCents
        self.revision = revision
    }
}
