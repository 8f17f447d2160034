public import Foundation
public import PostboxBus

/// `order.cancellation-requested`: the customer cancelled a confirmed order; payments refunds it.
public struct OrderCancellationRequested: EventPayload, Equatable {
    public static let eventType = "order.cancellation-requested"
    public static let eventVersion = 1

    public var orderId: UUID

    public init(orderId: UUID) {
        self.orderId = orderId
    }
}
