public import Foundation

/// One line a child process printed, with the time the harness read it.
public struct LogLine: Sendable, Hashable {
    /// When the harness read the line.
    public var at: Date
    /// The line, without its newline.
    public var text: String

    /// Creates a line.
    public init(at: Date, text: String) {
        self.at = at
        self.text = text
    }
}
