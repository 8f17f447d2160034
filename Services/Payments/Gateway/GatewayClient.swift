import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PostboxService

/// Calls the card processor over HTTP: charges and refunds with an idempotency key, so a retry after a lost
/// answer cannot charge twice.
struct GatewayClient: Sendable {
    let settings: GatewaySettings

    /// What the processor answered.
    enum Outcome: Sendable, Equatable {
        case captured(chargeId: String)
        case declined(chargeId: String)
        case refunded(refundId: String)
        /// A 4xx other than a decline: retrying cannot help.
        case rejected(String)
        /// A 5xx, a timeout or a broken connection: a retry with the same key may succeed.
        case unavailable(String)
    }

    struct ChargeBody: Codable {
        var amountCents: Int
        var token: String
        var reference: String
    }

    struct RefundBody: Codable {
        var chargeId: String
    }

    struct ChargeAnswer: Decodable {
        var id: String
        var status: String
    }

    struct RefundAnswer: Decodable {
        var id: String
    }

    func charge(
        reference: String,
        amountCents: Int,
        token: String,
        trace: TraceContext?,
        logger: Logger
    ) async -> Outcome {
        let body = ChargeBody(amountCents: amountCents, token: token, reference: reference)
        return await call(
            path: "/v1/charges",
            body: body,
            idempotencyKey: "charge-\(reference)",
            trace: trace,
            logger: logger
        ) { data in
            let answer = try JSONDecoder().decode(ChargeAnswer.self, from: data)
            return answer.status == "captured" ? .captured(chargeId: answer.id) : .declined(chargeId: answer.id)
        }
    }

    func refund(reference: String, chargeId: String, trace: TraceContext?, logger: Logger) async -> Outcome {
        await call(
            path: "/v1/refunds",
            body: RefundBody(chargeId: chargeId),
            idempotencyKey: "refund-\(reference)",
            trace: trace,
            logger: logger
        ) { data in
            .refunded(refundId: try JSONDecoder().decode(RefundAnswer.self, from: data).id)
        }
    }

    /// Up to `settings.tries` calls with a short backoff while the processor is unavailable.
    private func call(
        path: String,
        body: some Encodable,
        idempotencyKey: String,
        trace: TraceContext?,
        logger: Logger,
        decode: (Data) throws -> Outcome
    ) async -> Outcome {
        var outcome = Outcome.unavailable("not called")
        for attempt in 1...settings.tries {
            outcome = await once(path: path, body: body, idempotencyKey: idempotencyKey, trace: trace, logger: logger, decode: decode)
            guard case .unavailable(let reason) = outcome, attempt < settings.tries else { return outcome }
            logger.warning("card processor unavailable; retrying", metadata: ["reason": "\(reason)", "attempt": "\(attempt)"])
            try? await Task.sleep(for: .milliseconds(100 << attempt))
        }
        return outcome
    }

    private func once(
        path: String,
        body: some Encodable,
        idempotencyKey: String,
        trace: TraceContext?,
        logger: Logger,
        decode: (Data) throws -> Outcome
    ) async -> Outcome {
        do {
            var request = HTTPClientRequest(url: settings.url.absoluteString.trimmingSuffix("/") + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Idempotency-Key", value: idempotencyKey)
            request.headers.add(name: "traceparent", value: (trace ?? .random()).child().traceparent)
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
            let response = try await HTTPClient.shared.execute(request, timeout: .init(settings.timeout))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            let data = Data(bytes.readableBytesView)
            switch response.status.code {
            case 200..<300:
                return try decode(data)
            case 500...:
                return .unavailable("HTTP \(response.status.code)")
            default:
                return .rejected("HTTP \(response.status.code): \(String(decoding: data, as: UTF8.self).prefix(300))")
            }
        } catch {
            return .unavailable(String(describing: error))
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
