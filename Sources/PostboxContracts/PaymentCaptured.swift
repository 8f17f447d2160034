public import Foundation
public import PostboxBus

/// `payment.captured`: the card processor charged the order's total.
public struct PaymentCaptured: EventPayload, Equatable {
    public static let eventType = "payment.captured"
    public static let eventVersion = 1

    public var orderId: UUID
    public var paymentId: UUID
    public var amountCents: Int
    /// The processor's id for the charge.
    public var chargeId: String

    public init(orderId: UUID, paymentId: UUID, amountCents: Int, chargeId: String) {
        self.orderId = orderId
        self.paymentId = paymentId
        self.amountCents = amountCents
        self.chargeId = chargeId
    }
}
