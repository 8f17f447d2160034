import Foundation
import PostboxHarness
import ServiceLifecycle
import Subprocess
import SystemPackage

/// Runs one service instance as a child process, prints its output with a prefix, and restarts it with backoff
/// when it exits on its own. On graceful shutdown it sends SIGTERM and, after 8 s, SIGKILL.
struct ChildProcess: Service {
    let instance: ProcessInstance
    let executable: FilePath
    let environment: [String: String]
    let table: ProcessTable
    let printer: LogPrinter

    func run() async throws {
        var delay = Duration.seconds(1)
        let options = {
            var options = PlatformOptions()
            options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(8))]
            return options
        }()
        let updates = Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let startedAt = ContinuousClock.now
            var status = "unknown"
            do {
                let result = try await cancelWhenGracefulShutdown { [instance, executable, table, printer] in
                    try await Subprocess.run(
                        .path(executable),
                        environment: .inherit.updating(updates),
                        platformOptions: options,
                        input: .none,
                        output: .sequence,
                        error: .combinedWithOutput
                    ) { execution in
                        table.started(instance.label, pid: execution.processIdentifier.value)
                        for try await line in execution.standardOutput.lines() {
                            printer.line(instance.label, line)
                        }
                    }
                }
                status = "\(result.terminationStatus)"
            } catch {
                status = "\(error)"
            }
            let stopping = Task.isShuttingDownGracefully || Task.isCancelled
            table.exited(instance.label, restarting: !stopping)
            if stopping {
                printer.note("\(instance.label) stopped (\(status))")
                return
            }
            if ContinuousClock.now - startedAt > .seconds(30) { delay = .seconds(1) }
            printer.note("\(instance.label) exited (\(status)); restarting in \(delay)")
            let pause = delay
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            delay = min(delay * 2, .seconds(10))
        }
    }
}
