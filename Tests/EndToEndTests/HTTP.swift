import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A small JSON client over AsyncHTTPClient for the end-to-end tests.
enum HTTP {
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: Data

        func decode<Value: Decodable>(_ type: Value.Type = Value.self) throws -> Value {
            try JSONDecoder().decode(Value.self, from: body)
        }

        var text: String { String(decoding: body, as: UTF8.self) }
    }

    static func call(
        _ method: HTTPMethod,
        _ url: String,
        json: String? = nil,
        headers: [String: String] = [:]
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: Data(body.readableBytesView))
    }

    static func isReady(port: Int) async -> Bool {
        (try? await call(.GET, "http://127.0.0.1:\(port)/ready").status) == 200
    }
}
