import Foundation
import Logging
import ServiceLifecycle

/// Ends the service when the process that started it dies, so a supervisor killed with SIGKILL (a test run, `postbox
/// up`) leaves no orphans. Armed by `POSTBOX_PARENT_PID`; returns (shutting the group down gracefully) as soon as
/// the parent is gone, and at once when cancelled — as the group is when another service fails, for example the HTTP
/// server whose port is taken. A cancelled sleep returns at once, so a loop that ignored cancellation would spin for
/// ever and keep the group, and the process, from ending.
struct ParentWatch: Service {
    let parent: pid_t
    let logger: Logger

    static func fromEnvironment(logger: Logger) -> ParentWatch? {
        guard let text = ProcessInfo.processInfo.environment["POSTBOX_PARENT_PID"], let pid = pid_t(text) else { return nil }
        return ParentWatch(parent: pid, logger: logger)
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if getppid() != parent {
                logger.warning("parent process is gone; shutting down", metadata: ["parent.pid": "\(parent)"])
                return
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(250)) }
        }
    }
}
