public import Foundation
public import PostboxBus

/// `stock.reserved`: inventory holds every line of the order; payments may charge.
///
/// It carries what to charge, copied from the order's `order.placed`, so that payments charges from this event
/// alone and needs no delivery of `order.placed` to learn the amount. Both fields are optional: an event
/// published before they were carried has neither, and payments then charges what `order.placed` told it.
public struct StockReserved: EventPayload, Equatable {
    /// The topic, `stock.reserved`.
    public static let eventType = "stock.reserved"
    /// The schema version this type produces.
    public static let eventVersion = 1

    /// The order this is about.
    public var orderId: UUID
    /// The order total to charge, in cents, as `order.placed` stated it.
    public var totalCents: Int?
    /// The card processor's token for the customer's card, as `order.placed` stated it.
    public var paymentToken: String?

    /// Creates the value from its parts.
    public init(orderId: UUID, totalCents: Int? = nil, paymentToken: String? = nil) {
        self.orderId = orderId
        self.totalCents = totalCents
        self.paymentToken = paymentToken
    }
}
