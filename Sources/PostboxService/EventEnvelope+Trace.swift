public import Logging
public import PostboxBus

extension EventEnvelope {
    /// The trace this event belongs to, when its `traceparent` is well formed.
    public var trace: TraceContext? { traceparent.flatMap(TraceContext.init(traceparent:)) }
}

extension ReceivedEvent {
    /// `logger` with this event's id, type, attempt, trace and correlation ids as metadata.
    public func logger(from logger: Logger) -> Logger {
        var logger = logger
        logger[metadataKey: "bus.event.id"] = "\(id)"
        logger[metadataKey: "bus.event.type"] = "\(type)"
        logger[metadataKey: "bus.event.attempt"] = "\(attempt)"
        if let trace = envelope.trace { logger[metadataKey: "trace.id"] = "\(trace.traceId)" }
        if let correlation = envelope.correlationId { logger[metadataKey: "correlation.id"] = "\(correlation)" }
        return logger
    }
}
