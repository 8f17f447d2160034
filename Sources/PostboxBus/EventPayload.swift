/// A typed event body: what producers publish and consumers decode.
///
/// The type name is the topic subscriptions ask for. Bump ``eventVersion`` when the body changes in a way old
/// consumers cannot read; list in ``acceptedVersions`` the versions this Swift type can still decode.
///
/// ```swift
/// struct OrderPlaced: EventPayload {
///     static let eventType = "order.placed"
///     static let eventVersion = 2
///     static let acceptedVersions = 1...2
///     var orderId: UUID
///     var totalCents: Int
/// }
/// ```
public protocol EventPayload: Codable, Sendable {
    /// The event's type, which is also its topic, for example `order.placed`.
    static var eventType: String { get }
    /// The schema version this type produces.
    static var eventVersion: Int { get }
    /// The schema versions this type decodes. Defaults to `1...eventVersion`.
    static var acceptedVersions: ClosedRange<Int> { get }
}

extension EventPayload {
    /// Every version up to ``eventVersion``.
    public static var acceptedVersions: ClosedRange<Int> { 1...eventVersion }
}
