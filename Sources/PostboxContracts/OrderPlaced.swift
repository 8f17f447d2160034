public import Foundation
public import PostboxBus

/// `order.placed`: a customer checked out; inventory reserves, payments prepares to charge.
public struct OrderPlaced: EventPayload, Equatable {
    public static let eventType = "order.placed"
    public static let eventVersion = 1

    public var orderId: UUID
    public var customerId: UUID
    public var lines: [OrderLine]
    public var totalCents: Int
    /// The card processor's token for the customer's card.
    public var paymentToken: String

    public init(orderId: UUID, customerId: UUID, lines: [OrderLine], totalCents: Int, paymentToken: String) {
        self.orderId = orderId
        self.customerId = customerId
        self.lines = lines
        self.totalCents = totalCents
        self.paymentToken = paymentToken
    }
}
