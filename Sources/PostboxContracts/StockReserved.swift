public import Foundation
public import PostboxBus

/// `stock.reserved`: inventory holds every line of the order; payments may charge.
public struct StockReserved: EventPayload, Equatable {
    /// The topic, `stock.reserved`.
    public static let eventType = "stock.reserved"
    /// The schema version this type produces.
    public static let eventVersion = 1

    /// The order this is about.
    public var orderId: UUID

    /// Creates the value from its parts.
    public init(orderId: UUID) {
        self.orderId = orderId
    }
}
