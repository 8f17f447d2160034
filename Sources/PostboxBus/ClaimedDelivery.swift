import Foundation

/// A delivery this consumer holds a lease on, as the claim query returned it.
struct ClaimedDelivery: Sendable {
    var event: ReceivedEvent
    var leaseToken: UUID
    /// The previous claim's lease was still set: its consumer crashed or stalled and this claim took over.
    var tookOverLease: Bool
    /// The subscription already handled this event id: a duplicate to drop without running the handler.
    var alreadyHandled: Bool

    var deliveryId: Int64 { event.deliveryId }
}
