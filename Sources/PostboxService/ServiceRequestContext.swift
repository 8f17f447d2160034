public import Foundation
public import Hummingbird
import Logging
public import PostboxBus

/// The request context of every Postbox service: Hummingbird's core plus the request's trace and correlation id.
public struct ServiceRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// This request's span; set from the `traceparent` header by ``TracingMiddleware`` or started anew.
    public var trace: TraceContext
    /// The id that ties every event of one business flow together; `X-Correlation-Id` or the trace id.
    public var correlationId: String

    /// A context for one request.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        trace = .random()
        correlationId = trace.traceId
    }

    /// Request bodies are small JSON documents; anything larger is answered with 413.
    public var maxUploadSize: Int { 64 * 1024 }

    /// JSON with sorted keys and ISO 8601 dates, so responses read the same every time.
    public var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}

extension ServiceRequestContext {
    /// An envelope for an event this request causes, carrying its trace and correlation id.
    public func envelope<Payload: EventPayload>(_ payload: Payload, orderingKey: String? = nil) throws -> EventEnvelope {
        try EventEnvelope(
            payload,
            correlationId: correlationId,
            traceparent: trace.traceparent,
            orderingKey: orderingKey
        )
    }
}
