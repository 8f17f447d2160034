import Foundation
import Subprocess
import Synchronization
import SystemPackage
import Testing

/// A built executable of this package (they sit beside the test bundle).
func builtProduct(_ name: String) -> FilePath {
    FilePath(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path)
}

/// A child process started by ``withProcesses(_:_:)``: its pid once spawned and the lines it printed.
final class RunningProcess: Sendable {
    let name: String
    private let state = Mutex<(pid: pid_t?, lines: [String], status: TerminationStatus?)>((nil, [], nil))

    init(name: String) { self.name = name }

    var pid: pid_t? { state.withLock { $0.pid } }
    var lines: [String] { state.withLock { $0.lines } }
    var status: TerminationStatus? { state.withLock { $0.status } }

    func started(_ pid: pid_t) { state.withLock { $0.pid = pid } }
    func printed(_ line: String) { state.withLock { $0.lines.append(line) } }
    func ended(_ status: TerminationStatus) { state.withLock { $0.status = status } }

    /// The last lines it printed, for a failure message.
    var tail: String { lines.suffix(30).map { "[\(name)] \($0)" }.joined(separator: "\n") }

    func send(_ signal: Int32) {
        if let pid { kill(pid, signal) }
    }
}

/// What to launch: an executable, its arguments and environment.
struct ProcessSpec: Sendable {
    var name: String
    var executable: FilePath
    var arguments: [String] = []
    var environment: [String: String]
}

/// Runs the processes while `body` runs; then sends each SIGTERM and waits for it to end (SIGKILL after 15 s).
/// Returns `body`'s result and each process's termination status.
func withProcesses<Result: Sendable>(
    _ specs: [ProcessSpec],
    _ body: @Sendable ([RunningProcess]) async throws -> Result
) async throws -> (Result, [String: TerminationStatus]) {
    let processes = specs.map { RunningProcess(name: $0.name) }
    let result = try await withThrowingTaskGroup(of: Void.self) { group in
        for (spec, process) in zip(specs, processes) {
            group.addTask {
                let updates = Dictionary(uniqueKeysWithValues: spec.environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })
                let outcome = try await Subprocess.run(
                    .path(spec.executable),
                    arguments: Arguments(spec.arguments),
                    environment: .inherit.updating(updates),
                    input: .none,
                    output: .sequence,
                    error: .combinedWithOutput
                ) { execution in
                    process.started(execution.processIdentifier.value)
                    for try await line in execution.standardOutput.strings() {
                        process.printed(String(line.trimmingCharacters(in: .newlines)))
                    }
                }
                process.ended(outcome.terminationStatus)
            }
        }
        do {
            let result = try await body(processes)
            try await stop(processes, group: &group)
            return result
        } catch {
            for process in processes { process.send(SIGKILL) }
            try? await group.waitForAll()
            throw error
        }
    }
    var statuses: [String: TerminationStatus] = [:]
    for process in processes { statuses[process.name] = process.status }
    return (result, statuses)
}

private func stop(_ processes: [RunningProcess], group: inout ThrowingTaskGroup<Void, any Error>) async throws {
    for process in processes { process.send(SIGTERM) }
    let deadline = ContinuousClock.now + .seconds(15)
    while processes.contains(where: { $0.status == nil }), ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(20))
    }
    for process in processes where process.status == nil { process.send(SIGKILL) }
    try await group.waitForAll()
}

/// Polls `condition` until it holds or `timeout` passes; then records `message` and throws.
func eventually(
    _ message: @autoclosure () -> String,
    timeout: Duration = .seconds(20),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    Issue.record("timed out after \(timeout): \(message())", sourceLocation: sourceLocation)
    throw TimedOut()
}

struct TimedOut: Error {}
