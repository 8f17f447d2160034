public import Foundation
public import PostboxBus

/// `payment.captured`: the card processor charged the order's total.
public struct PaymentCaptured: EventPayload, Equatable {
    /// The topic, `payment.captured`.
    public static let eventType = "payment.captured"
    /// The schema version this type produces.
    public static let eventVersion = 1

    /// The order this is about.
    public var orderId: UUID
    /// Payments' id for the payment.
    public var paymentId: UUID
    /// The amount, in cents.
    public var amountCents: Int
    /// The processor's id for the charge.
    public var chargeId: String

    /// Creates the value from its parts.
    public init(orderId: UUID, paymentId: UUID, amountCents: Int, chargeId: String) {
        self.orderId = orderId
        self.paymentId = paymentId
        self.amountCents = amountCents
        self.chargeId = chargeId
    }
}
