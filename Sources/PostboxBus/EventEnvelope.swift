public import Foundation

/// The versioned envelope every event travels in: identity, type, schema version, time, tracing and the JSON body.
public struct EventEnvelope: Sendable, Hashable, Codable {
    /// Unique per event; a second publish with the same id is ignored, and a consumer never handles an id twice.
    /// By default a time-ordered (version 7) UUID, see ``Foundation/UUID/timeOrdered(at:)``.
    public var id: UUID
    /// The event's type and topic, for example `order.placed`.
    public var type: String
    /// The schema version of ``payload``.
    public var version: Int
    /// When the fact happened, as the producer says.
    public var occurredAt: Date
    /// Ties together every event of one business flow (for example one checkout).
    public var correlationId: String?
    /// The id of the event whose handling produced this one, if any.
    public var causationId: UUID?
    /// The W3C trace context of the operation that produced the event.
    public var traceparent: String?
    /// Events with the same key are handled one at a time, in publish order, within a subscription.
    public var orderingKey: String?
    /// The body, as JSON text. Stored as `jsonb`, so what consumers read back is equivalent JSON, not the same
    /// bytes (key order and spacing are PostgreSQL's).
    public var payload: String

    /// Creates an envelope with a raw JSON body.
    public init(
        id: UUID = .timeOrdered(),
        type: String,
        version: Int = 1,
        occurredAt: Date = Date(),
        correlationId: String? = nil,
        causationId: UUID? = nil,
        traceparent: String? = nil,
        orderingKey: String? = nil,
        payload: String
    ) {
        self.id = id
        self.type = type
        self.version = version
        self.occurredAt = occurredAt
        self.correlationId = correlationId
        self.causationId = causationId
        self.traceparent = traceparent
        self.orderingKey = orderingKey
        self.payload = payload
    }

    /// Creates an envelope for a typed event, encoding its body as JSON.
    public init<Payload: EventPayload>(
        _ payload: Payload,
        id: UUID = .timeOrdered(),
        occurredAt: Date = Date(),
        correlationId: String? = nil,
        causationId: UUID? = nil,
        traceparent: String? = nil,
        orderingKey: String? = nil
    ) throws {
        let body = try EventCoding.encoder.encode(payload)
        self.init(
            id: id,
            type: Payload.eventType,
            version: Payload.eventVersion,
            occurredAt: occurredAt,
            correlationId: correlationId,
            causationId: causationId,
            traceparent: traceparent,
            orderingKey: orderingKey,
            payload: String(decoding: body, as: UTF8.self)
        )
    }

    /// An envelope for an event caused by this one: same correlation id and trace, causation id set to this id.
    public func causing<Payload: EventPayload>(_ payload: Payload, orderingKey: String? = nil) throws -> EventEnvelope {
        try EventEnvelope(
            payload,
            correlationId: correlationId,
            causationId: id,
            traceparent: traceparent,
            orderingKey: orderingKey ?? self.orderingKey
        )
    }

    /// Decodes the body as `Payload`, checking the type and the version first.
    ///
    /// - Throws: ``EventDecodingError`` when the type differs, the version is not in
    ///   ``EventPayload/acceptedVersions``, or the JSON does not fit. A consumer dead-letters such an event at once.
    public func decode<Payload: EventPayload>(_: Payload.Type = Payload.self) throws -> Payload {
        guard type == Payload.eventType else {
            throw EventDecodingError(eventId: id, reason: "event type \(type) is not \(Payload.eventType)")
        }
        guard Payload.acceptedVersions.contains(version) else {
            throw EventDecodingError(
                eventId: id,
                reason: "\(type) version \(version) is not supported (accepted: \(Payload.acceptedVersions.lowerBound)"
                    + "...\(Payload.acceptedVersions.upperBound))"
            )
        }
        do {
            return try EventCoding.decoder.decode(Payload.self, from: Data(payload.utf8))
        } catch {
            throw EventDecodingError(eventId: id, reason: "\(type) v\(version) body does not decode: \(error)")
        }
    }
}

/// The JSON coders used for event bodies: ISO 8601 dates, sorted keys (stable fixtures).
enum EventCoding {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}
