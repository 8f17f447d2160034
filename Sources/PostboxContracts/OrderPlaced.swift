public import Foundation
public import PostboxBus

/// `order.placed`: a customer checked out; inventory reserves, payments prepares to charge.
public struct OrderPlaced: EventPayload, Equatable {
    /// The topic, `order.placed`.
    public static let eventType = "order.placed"
    /// The schema version this type produces.
    public static let eventVersion = 1

    /// The order this is about.
    public var orderId: UUID
    /// The customer who placed the order.
    public var customerId: UUID
    /// What was ordered, at the prices of checkout.
    public var lines: [OrderLine]
    /// The order total, in cents.
    public var totalCents: Int
    /// The card processor's token for the customer's card.
    public var paymentToken: String

    /// Creates the value from its parts.
    public init(orderId: UUID, customerId: UUID, lines: [OrderLine], totalCents: Int, paymentToken: String) {
        self.orderId = orderId
        self.customerId = customerId
        self.lines = lines
        self.totalCents = totalCents
        self.paymentToken = paymentToken
    }
}
