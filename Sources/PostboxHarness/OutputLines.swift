public import Subprocess

extension SubprocessOutputSequence {
    /// The output as lines without their line ends (`\n` or `\r\n`); a last line without one is kept.
    ///
    /// Use it instead of `strings()` for a child that prints a lot: in swift-subprocess 1.0.2 `strings()` decodes
    /// byte by byte through unspecialised generic code, and reading four busy services' logs that way cost the
    /// harness more CPU than one of the services. This splits each buffer with a byte scan.
    public func lines() -> OutputLines { OutputLines(base: self) }
}

/// The lines of a child's output; see ``Subprocess/SubprocessOutputSequence/lines()``.
public struct OutputLines: AsyncSequence, Sendable {
    /// A line, without its line end.
    public typealias Element = String
    /// Reading the child's output can fail.
    public typealias Failure = any Error

    let base: SubprocessOutputSequence

    /// Starts reading; like the output it reads, the sequence can be iterated once.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }

    /// Reads buffers and hands out the complete lines in them, keeping a partial last line for the next buffer.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: SubprocessOutputSequence.Iterator
        var partial: [UInt8] = []
        var ready: [String] = []
        var nextReady = 0
        var ended = false

        /// The next line, or nil once the output has ended.
        public mutating func next() async throws -> String? {
            while true {
                if nextReady < ready.count {
                    defer { nextReady += 1 }
                    return ready[nextReady]
                }
                ready.removeAll(keepingCapacity: true)
                nextReady = 0
                if ended { return nil }
                guard let buffer = try await base.next() else {
                    ended = true
                    if !partial.isEmpty { ready.append(Self.line(partial[...])) }
                    partial = []
                    continue
                }
                buffer.withUnsafeBytes { bytes in
                    var start = 0
                    for index in 0..<bytes.count where bytes[index] == UInt8(ascii: "\n") {
                        partial.append(contentsOf: bytes[start..<index])
                        ready.append(Self.line(partial[...]))
                        partial.removeAll(keepingCapacity: true)
                        start = index + 1
                    }
                    partial.append(contentsOf: bytes[start..<bytes.count])
                }
            }
        }

        private static func line(_ bytes: ArraySlice<UInt8>) -> String {
            String(decoding: bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes, as: UTF8.self)
        }
    }
}
