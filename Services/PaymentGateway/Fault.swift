/// One programmed fault of the card-processor stand-in.
///
/// JSON: `{"kind": "error", "status": 500, "count": 2, "endpoint": "charges"}`.
struct Fault: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable {
        /// Record the charge as declined whatever the token.
        case decline
        /// Answer with `status` (default 500) and do nothing.
        case error
        /// Wait `delayMs` (default 500), then work normally.
        case delay
        /// Wait `delayMs` (default 10000), then answer 504 having done nothing.
        case timeout
        /// Make the charge or refund, wait `delayMs` (default 0), then answer 502 as if the answer was lost.
        case chargeThenDrop = "charge-then-drop"
    }

    /// Which endpoint a fault applies to.
    enum Endpoint: String, Codable, Sendable {
        case charges, refunds
    }

    var kind: Kind
    /// How many requests it applies to; absent means every request until `DELETE /__admin/faults`.
    var count: Int?
    var delayMs: Int?
    var status: Int?
    /// `charges` or `refunds`; absent means both.
    var endpoint: Endpoint?
}
