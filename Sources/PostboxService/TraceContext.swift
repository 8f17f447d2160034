import Foundation

/// A W3C Trace Context position: the trace a unit of work belongs to and the span that caused it.
///
/// Postbox carries it as the `traceparent` HTTP header and in every event envelope, so one checkout can be
/// followed through every service's logs by its `trace.id`.
public struct TraceContext: Sendable, Hashable, CustomStringConvertible {
    /// 32 lower-case hex digits, never all zero.
    public let traceId: String
    /// 16 lower-case hex digits, never all zero.
    public let spanId: String
    /// The trace flags byte (`01` = sampled).
    public let flags: String

    /// Parses a `traceparent` value (`00-<trace-id>-<span-id>-<flags>`); nil when it is malformed.
    public init?(traceparent: String) {
        let parts = traceparent.trimmingCharacters(in: .whitespaces).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].count == 2, parts[0] != "ff",
            Self.isHex(parts[0], count: 2), Self.isHex(parts[1], count: 32), Self.isHex(parts[2], count: 16),
            Self.isHex(parts[3], count: 2),
            parts[1] != String(repeating: "0", count: 32), parts[2] != String(repeating: "0", count: 16)
        else { return nil }
        traceId = String(parts[1])
        spanId = String(parts[2])
        flags = String(parts[3])
    }

    private init(traceId: String, spanId: String, flags: String) {
        self.traceId = traceId
        self.spanId = spanId
        self.flags = flags
    }

    /// A new trace with a random id.
    public static func random() -> TraceContext {
        TraceContext(traceId: randomHex(bytes: 16), spanId: randomHex(bytes: 8), flags: "01")
    }

    /// A new span in the same trace, for work this span causes (an outgoing call, a handler).
    public func child() -> TraceContext {
        TraceContext(traceId: traceId, spanId: Self.randomHex(bytes: 8), flags: flags)
    }

    /// The `traceparent` header value.
    public var traceparent: String { "00-\(traceId)-\(spanId)-\(flags)" }

    public var description: String { traceparent }

    private static func isHex(_ text: Substring, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    private static func randomHex(bytes: Int) -> String {
        var text = ""
        repeat {
            text = (0..<bytes).map { _ in
                let byte = UInt8.random(in: 0...255)
                return String(byte, radix: 16).leftPadded(to: 2)
            }.joined()
        } while text.allSatisfy { $0 == "0" }
        return text
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
