/// One line of an order as the events carry it: how many of a SKU, at which unit price.
public struct OrderLine: Codable, Sendable, Hashable {
    /// The product.
    public var sku: String
    /// How many.
    public var quantity: Int
    /// The unit price the customer was charged, in cents.
    public var priceCents: Int

    /// Creates the value from its parts.
    public init(sku: String, quantity: Int, priceCents: Int) {
        self.sku = sku
        self.quantity = quantity
        self.priceCents = priceCents
    }
}
