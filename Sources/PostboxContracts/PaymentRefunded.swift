public import Foundation
public import PostboxBus

/// `payment.refunded`: the processor refunded the order's payment; inventory restocks, orders cancels.
public struct PaymentRefunded: EventPayload, Equatable {
    /// The topic, `payment.refunded`.
    public static let eventType = "payment.refunded"
    /// The schema version this type produces.
    public static let eventVersion = 1

    /// The order this is about.
    public var orderId: UUID
    /// Payments' id for the payment.
    public var paymentId: UUID
    /// The amount, in cents.
    public var amountCents: Int

    /// Creates the value from its parts.
    public init(orderId: UUID, paymentId: UUID, amountCents: Int) {
        self.orderId = orderId
        self.paymentId = paymentId
        self.amountCents = amountCents
    }
}
