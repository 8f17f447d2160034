/// A wait that ran out: what was awaited and what the harness saw.
public struct WaitTimedOut: Error, CustomStringConvertible {
    /// What was awaited.
    public var what: String
    /// How long the harness waited.
    public var timeout: Duration
    /// A dump of what the harness saw, for the failure report.
    public var diagnostic: String

    public var description: String { "timed out after \(timeout) waiting for \(what)\n\(diagnostic)" }
}

/// Polls `condition` every `interval` until it holds; after `timeout` throws ``WaitTimedOut`` with the text
/// `diagnostic` produces then. Errors thrown by `condition` count as "not yet".
public func eventually(
    _ what: String,
    timeout: Duration = .seconds(30),
    interval: Duration = .milliseconds(25),
    diagnostic: () async -> String = { "" },
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if (try? await condition()) == true { return }
        guard ContinuousClock.now < deadline else {
            throw WaitTimedOut(what: what, timeout: timeout, diagnostic: await diagnostic())
        }
        try await Task.sleep(for: interval)
    }
}
