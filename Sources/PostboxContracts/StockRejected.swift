public import Foundation
public import PostboxBus

/// `stock.rejected`: inventory could not hold every line, so it holds none.
public struct StockRejected: EventPayload, Equatable {
    public static let eventType = "stock.rejected"
    public static let eventVersion = 1

    public var orderId: UUID
    /// Why, for the customer: which SKUs were short or unknown.
    public var reason: String

    public init(orderId: UUID, reason: String) {
        self.orderId = orderId
        self.reason = reason
    }
}
