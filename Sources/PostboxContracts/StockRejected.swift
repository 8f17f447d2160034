public import Foundation
public import PostboxBus

/// `stock.rejected`: inventory could not hold every line, so it holds none.
public struct StockRejected: EventPayload, Equatable {
    /// The topic, `stock.rejected`.
    public static let eventType = "stock.rejected"
    /// The schema version this type produces.
    public static let eventVersion = 1

    /// The order this is about.
    public var orderId: UUID
    /// Why, for the customer: which SKUs were short or unknown.
    public var reason: String

    /// Creates the value from its parts.
    public init(orderId: UUID, reason: String) {
        self.orderId = orderId
        self.reason = reason
    }
}
