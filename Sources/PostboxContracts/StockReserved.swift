public import Foundation
public import PostboxBus

/// `stock.reserved`: inventory holds every line of the order; payments may charge.
public struct StockReserved: EventPayload, Equatable {
    public static let eventType = "stock.reserved"
    public static let eventVersion = 1

    public var orderId: UUID

    public init(orderId: UUID) {
        self.orderId = orderId
    }
}
