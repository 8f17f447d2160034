public import Foundation
public import PostboxBus

/// `payment.failed`: the card was declined, or payments gave up on an unavailable processor.
public struct PaymentFailed: EventPayload, Equatable {
    public static let eventType = "payment.failed"
    public static let eventVersion = 1

    public var orderId: UUID
    /// `declined` or `processor-unavailable`.
    public var reason: String

    public init(orderId: UUID, reason: String) {
        self.orderId = orderId
        self.reason = reason
    }
}
