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
