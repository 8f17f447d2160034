import Foundation
public import Logging

/// Named places where a service can be made to die on purpose, for failure-path tests.
///
/// Armed through the environment, off by default: `POSTBOX_CRASH_POINTS=payments.after-charge-before-commit` (a
/// comma-separated list). When an armed point is reached, the process logs `crash point reached` and exits at once
/// with status 86, without running any shutdown code — the same as a power cut at that line, as far as the
/// database and the other services can tell.
///
/// | point | where |
/// | --- | --- |
/// | `orders.after-commit-before-response` | checkout committed (order stored, `order.placed` published), before the 202 |
/// | `inventory.after-reserve-commit` | the one statement that reserves stock, publishes `stock.reserved` and acknowledges `order.placed` committed, before anything else |
/// | `payments.after-charge-before-commit` | the processor charged the card, before the payment is stored |
/// | `payments.after-refund-before-commit` | the processor refunded, before the refund is stored |
public enum CrashPoint {
    /// The exit status of a process that reached an armed crash point.
    public static let exitStatus: Int32 = 86

    /// The environment variable that arms crash points.
    public static let variable = "POSTBOX_CRASH_POINTS"

    private static let armed: Set<String> = {
        let text = ProcessInfo.processInfo.environment[variable] ?? ""
        return Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }()

    /// Exits the process now if `name` is armed.
    public static func reached(_ name: String, logger: Logger) {
        guard armed.contains(name) else { return }
        logger.critical("crash point reached", metadata: ["crash.point": "\(name)"])
        FileHandle.standardError.write(Data("crash point reached: \(name)\n".utf8))
        _exit(exitStatus)
    }
}
