public import Foundation

/// An event as a consumer receives it: the envelope plus where it is in its delivery.
public struct ReceivedEvent: Sendable {
    /// The event itself.
    public var envelope: EventEnvelope
    /// The subscription it is delivered to.
    public var subscription: String
    /// 1 for the first delivery; counted when the event is claimed, so a crash mid-handler counts too.
    public var attempt: Int
    /// When the event was published (committed into the bus).
    public var publishedAt: Date
    /// The delivery's row id, unique within the bus.
    public var deliveryId: Int64

    /// The event id.
    public var id: UUID { envelope.id }
    /// The event type (topic).
    public var type: String { envelope.type }

    /// Decodes the body; see ``EventEnvelope/decode(_:)``.
    public func decode<Payload: EventPayload>(_ type: Payload.Type = Payload.self) throws -> Payload {
        try envelope.decode(type)
    }
}
