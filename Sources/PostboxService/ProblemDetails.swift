import Foundation
public import Hummingbird

/// An RFC 9457 problem document, the body of every error response (`application/problem+json`).
public struct ProblemDetails: Codable, Sendable, Equatable {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    public var type: String
    /// The status's reason phrase, or a short summary of the kind.
    public var title: String
    /// The HTTP status code.
    public var status: Int
    /// What went wrong with this request, for a person.
    public var detail: String?

    /// Creates a problem document.
    public init(type: String = "about:blank", title: String, status: Int, detail: String?) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
    }
}

/// An error that a handler throws to answer with a problem document and the given status.
///
/// ```swift
/// throw Problem(.unprocessableContent, "quantity must be at least 1, got 0")
/// ```
public struct Problem: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    /// The response status.
    public let status: HTTPResponse.Status
    /// What went wrong, for the client.
    public let detail: String
    /// A URI naming the kind of problem.
    public let type: String
    /// Extra response headers, such as `WWW-Authenticate`.
    public let headers: HTTPFields

    /// Creates a problem with `status` and a one-line `detail`.
    public init(_ status: HTTPResponse.Status, _ detail: String, type: String = "about:blank", headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.type = type
        self.headers = headers
    }

    /// The problem document this error renders.
    public var document: ProblemDetails {
        ProblemDetails(type: type, title: status.reasonPhrase, status: status.code, detail: detail)
    }

    /// Renders the problem document as `application/problem+json`.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = try encoder.encode(document)
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    public var description: String { "\(status.code) \(detail)" }
}
