public import HTTPTypes
public import Hummingbird
import Logging

/// Reads the W3C `traceparent` and `X-Correlation-Id` headers into the request context (starting a new trace
/// when there is none or it is malformed), adds `trace.id` and `correlation.id` to the request's logger, and
/// answers with `X-Trace-Id` so a client can find its request in the logs.
public struct TracingMiddleware: RouterMiddleware {
    /// The request context it works with.
    public typealias Context = ServiceRequestContext

    /// Creates the middleware.
    public init() {}

    /// Handles one request (RouterMiddleware).
    public func handle(
        _ request: Request,
        context: ServiceRequestContext,
        next: (Request, ServiceRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        if let header = request.headers[.traceparent], let parent = TraceContext(traceparent: header) {
            context.trace = parent.child()
        }
        context.correlationId =
            request.headers[.correlationId].flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
            ?? context.trace.traceId
        context.logger[metadataKey: "trace.id"] = "\(context.trace.traceId)"
        context.logger[metadataKey: "correlation.id"] = "\(context.correlationId)"
        let traceId = context.trace.traceId
        do {
            var response = try await next(request, context)
            response.headers[.traceId] = traceId
            return response
        } catch let error as any HTTPResponseError {
            var response = try error.response(from: request, context: context)
            response.headers[.traceId] = traceId
            return response
        }
    }
}

extension HTTPField.Name {
    /// W3C Trace Context's `traceparent`.
    public static let traceparent = Self("traceparent")!
    /// The correlation id a client may send.
    public static let correlationId = Self("X-Correlation-Id")!
    /// The trace id a response carries.
    public static let traceId = Self("X-Trace-Id")!
    /// The key that makes a retried request safe.
    public static let idempotencyKey = Self("Idempotency-Key")!
}
