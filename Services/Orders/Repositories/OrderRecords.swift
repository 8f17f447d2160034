import Foundation
import PostboxContracts

/// A cart and its items, priced from the catalogue.
struct CartRecord: Sendable {
    var id: UUID
    var customerId: UUID
    var status: String
    var items: [OrderLine]
}

/// An order and its lines.
struct OrderRecord: Sendable {
    var id: UUID
    var customerId: UUID
    var status: String
    var reason: String?
    var totalCents: Int
    var cancellationRequested: Bool
    var lines: [OrderLine]
}

/// What a checkout's `order.placed` carries besides what the placing statement reads: its envelope's identity
/// and tracing, and the payment token the customer gave.
struct PlacedOrderEvent: Sendable {
    var id: UUID
    var correlationId: String
    var traceparent: String
    var traceId: String
    var paymentToken: String
}
