import Foundation
import Synchronization

/// Writes the children's output to this terminal, one line at a time, each prefixed with its process's name
/// (coloured when standard output is a terminal).
final class LogPrinter: Sendable {
    private let lock = Mutex(())
    private let colours: Bool
    private let width: Int

    init(labels: [String]) {
        colours = isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        width = labels.map(\.count).max() ?? 8
    }

    func line(_ label: String, _ text: String) {
        let padded = label.padding(toLength: width, withPad: " ", startingAt: 0)
        let prefix = colours ? "\u{1B}[\(Self.colour(for: label))m\(padded) |\u{1B}[0m " : "\(padded) | "
        write(prefix + text + "\n")
    }

    func note(_ text: String) {
        write((colours ? "\u{1B}[1mpostbox\u{1B}[0m " : "postbox ") + text + "\n")
    }

    private func write(_ text: String) {
        lock.withLock { _ in FileHandle.standardOutput.write(Data(text.utf8)) }
    }

    private static func colour(for label: String) -> Int {
        let palette = [36, 33, 35, 32, 34, 31]
        let sum = label.unicodeScalars.reduce(0) { $0 + Int($1.value) }
        return palette[sum % palette.count]
    }
}
