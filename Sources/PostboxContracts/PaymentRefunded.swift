public import Foundation
public import PostboxBus

/// `payment.refunded`: the processor refunded the order's payment; inventory restocks, orders cancels.
public struct PaymentRefunded: EventPayload, Equatable {
    public static let eventType = "payment.refunded"
    public static let eventVersion = 1

    public var orderId: UUID
    public var paymentId: UUID
    public var amountCents: Int

    public init(orderId: UUID, paymentId: UUID, amountCents: Int) {
        self.orderId = orderId
        self.paymentId = paymentId
        self.amountCents = amountCents
    }
}
