public import Foundation

/// An event whose body a consumer cannot read. Consumers send it to dead letters at once, with ``reason``.
public struct EventDecodingError: PermanentHandlerError, CustomStringConvertible {
    /// The event that could not be decoded.
    public var eventId: UUID
    /// Why, in one line.
    public var reason: String

    /// Creates the error for `eventId` with a one-line `reason`.
    public init(eventId: UUID, reason: String) {
        self.eventId = eventId
        self.reason = reason
    }

    /// One line naming the event and the reason.
    public var description: String { "cannot decode event \(eventId): \(reason)" }
}

/// An error that retrying will not fix. A handler that throws one sends its event straight to dead letters.
public protocol PermanentHandlerError: Error, Sendable {}
