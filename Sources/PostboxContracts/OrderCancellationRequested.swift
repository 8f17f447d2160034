public import Foundation
public import PostboxBus

/// `order.cancellation-requested`: the customer cancelled a confirmed order; payments refunds it.
public struct OrderCancellationRequested: EventPayload, Equatable {
    /// The topic, `order.cancellation-requested`.
    public static let eventType = "order.cancellation-requested"
    /// The schema version this type produces.
    public static let eventVersion = 1

    /// The order this is about.
    public var orderId: UUID

    /// Creates the value from its parts.
    public init(orderId: UUID) {
        self.orderId = orderId
    }
}
