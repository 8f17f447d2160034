public import Hummingbird
import Logging
import PostgresNIO

/// Turns every error a handler throws into an `application/problem+json` response.
///
/// Hummingbird's own errors (bad JSON, a path parameter of the wrong type, an oversize body, an unknown route) keep
/// their 4xx status and message; anything else is logged with its full description and answered with a generic
/// 500, so database errors never reach clients. A handler's error thrown inside `PostgresClient.withTransaction`
/// is unwrapped first, so a ``Problem`` thrown in a transaction keeps its status.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    /// Handles one request (RouterMiddleware).
    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            do {
                return try await next(request, context)
            } catch let error as PostgresTransactionError {
                // A handler's own error thrown inside `withTransaction` comes back wrapped; answer with it.
                if let inner = error.closureError, error.rollbackError == nil, inner is any HTTPResponseError {
                    throw inner
                }
                throw error
            }
        } catch let problem as Problem {
            throw problem
        } catch let error as HTTPError {
            throw Problem(error.status, error.body ?? error.status.reasonPhrase, headers: error.headers)
        } catch let error as any HTTPResponseError {
            if error.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            throw Problem(error.status, Self.detail(for: error.status))
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            throw Problem(.internalServerError, "the server failed to handle this request; see its log")
        }
    }

    private static func detail(for status: HTTPResponse.Status) -> String {
        switch status {
        case .contentTooLarge: "the request body is larger than this endpoint accepts"
        default: status.reasonPhrase
        }
    }
}
