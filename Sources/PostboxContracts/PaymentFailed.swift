public import Foundation
public import PostboxBus

/// `payment.failed`: the card was declined, or payments gave up on an unavailable processor.
public struct PaymentFailed: EventPayload, Equatable {
    /// The topic, `payment.failed`.
    public static let eventType = "payment.failed"
    /// The schema version this type produces.
    public static let eventVersion = 1

    /// The order this is about.
    public var orderId: UUID
    /// `declined` or `processor-unavailable`.
    public var reason: String

    /// Creates the value from its parts.
    public init(orderId: UUID, reason: String) {
        self.orderId = orderId
        self.reason = reason
    }
}
