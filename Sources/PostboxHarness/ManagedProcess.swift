public import Foundation
import Subprocess
import Synchronization
public import SystemPackage

/// A child process the harness starts, signals, restarts and stops, keeping every line it prints (with a
/// timestamp) and how each run ended.
///
/// Output is read continuously, so a chatty child never blocks on a full pipe. `stop()` sends SIGTERM and waits,
/// then SIGKILL; a process still running when the harness is released is killed.
public final class ManagedProcess: Sendable {
    /// How the process ended one of its runs.
    public struct Exit: Sendable, CustomStringConvertible {
        /// When the harness saw it end.
        public var at: Date
        /// `exited(N)` or `signaled(N)`.
        public var status: String
        /// The exit code, or nil if it was killed by a signal.
        public var code: Int32?
        public var description: String { status }
    }

    private struct State {
        var environment: [String: String]
        var pid: Int32?
        var lines: [LogLine] = []
        var exits: [Exit] = []
        var run: Task<Void, Never>?
        var runs = 0
    }

    /// The name in logs and reports (`orders`, `orders-2`).
    public let name: String
    /// The executable.
    public let executable: FilePath
    /// Its arguments.
    public let arguments: [String]
    private let state: Mutex<State>
    private let maximumLines: Int

    /// Creates a process that is not started yet.
    public init(name: String, executable: FilePath, arguments: [String] = [], environment: [String: String], maximumLines: Int = 20_000) {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.maximumLines = maximumLines
        state = Mutex(State(environment: environment))
    }

    deinit {
        if let pid = state.withLock({ $0.pid }) { sendSignal(SIGKILL, to: pid) }
    }

    /// The pid of the current run, if it is running.
    public var pid: Int32? { state.withLock { $0.pid } }
    /// Whether a run is in progress.
    public var isRunning: Bool { state.withLock { $0.pid != nil } }
    /// Every line printed, across runs.
    public var lines: [LogLine] { state.withLock { $0.lines } }
    /// How each finished run ended, oldest first.
    public var exits: [Exit] { state.withLock { $0.exits } }
    /// The environment the next run gets.
    public var environment: [String: String] { state.withLock { $0.environment } }

    /// The last `count` lines, prefixed with the name, for a diagnostic.
    public func tail(_ count: Int = 40) -> String {
        lines.suffix(count).map { "[\(name)] \($0.text)" }.joined(separator: "\n")
    }

    /// Changes the environment of the next run (for example to disarm a crash point before a restart).
    public func updateEnvironment(_ change: @Sendable (inout [String: String]) -> Void) {
        state.withLock { change(&$0.environment) }
    }

    /// Starts a run; returns once the process is spawned (or its spawn failed, which is recorded as an exit).
    public func start() async {
        let (environment, run) = state.withLock { state -> ([String: String], Int) in
            state.runs += 1
            return (state.environment, state.runs)
        }
        let (spawned, spawnedContinuation) = AsyncStream<Void>.makeStream()
        let task = Task { [self] in
            let updates = Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })
            do {
                let outcome = try await Subprocess.run(
                    .path(executable),
                    arguments: Arguments(arguments),
                    environment: .inherit.updating(updates),
                    input: .none,
                    output: .sequence,
                    error: .combinedWithOutput
                ) { execution in
                    self.state.withLock { $0.pid = execution.processIdentifier.value }
                    spawnedContinuation.finish()
                    for try await line in execution.standardOutput.lines() { self.append(line) }
                }
                self.ended(status: outcome.terminationStatus)
            } catch {
                self.append("harness: run \(run) failed: \(error)")
                self.ended(status: nil)
            }
            spawnedContinuation.finish()
        }
        state.withLock { $0.run = task }
        for await _ in spawned {}
    }

    /// Sends a signal to the current run, if any.
    public func signal(_ signal: Int32) {
        if let pid { sendSignal(signal, to: pid) }
    }

    /// SIGKILL, then waits until the run has ended.
    public func kill() async {
        signal(SIGKILL)
        await waitForExit()
    }

    /// SIGTERM, waits up to `grace`, then SIGKILL; returns how the run ended.
    @discardableResult
    public func stop(grace: Duration = .seconds(10)) async -> Exit? {
        guard isRunning else { return exits.last }
        signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        if isRunning { signal(SIGKILL) }
        await waitForExit()
        return exits.last
    }

    /// Stops (if running) and starts again.
    public func restart() async {
        await stop()
        await start()
    }

    /// Waits until the current run has ended and its output has been read.
    public func waitForExit() async {
        let task = state.withLock { $0.run }
        await task?.value
    }

    private func append(_ text: String) {
        state.withLock { state in
            state.lines.append(LogLine(at: Date(), text: text))
            // Trimmed a tenth at a time: removing from the front moves every line kept.
            if state.lines.count > maximumLines + maximumLines / 10 {
                state.lines.removeFirst(state.lines.count - maximumLines)
            }
        }
    }

    private func ended(status: TerminationStatus?) {
        let exit: Exit
        switch status {
        case .exited(let code): exit = Exit(at: Date(), status: "exited(\(code))", code: code)
        case .signaled(let signal): exit = Exit(at: Date(), status: "signaled(\(signal))", code: nil)
        case nil: exit = Exit(at: Date(), status: "failed to start", code: nil)
        }
        state.withLock { state in
            state.pid = nil
            state.exits.append(exit)
        }
    }
}

/// `kill(2)`, out of reach of `ManagedProcess.kill()`'s name.
private func sendSignal(_ signal: Int32, to pid: Int32) {
    _ = kill(pid, signal)
}
