import Foundation
import PostboxHarness

/// How one scenario run ended.
public struct ScenarioResult: Sendable {
    /// The name.
    public var name: String
    /// Whether it passed.
    public var passed: Bool
    /// How long it took, in seconds.
    public var seconds: Double
    /// Why it failed: the scenario's own error, a timeout with its diagnostic, or broken invariants.
    public var failure: String?
    /// The broken invariants, if any.
    public var violations: [Violation]
    /// Where the report is, when it was kept.
    public var reportDirectory: String?
    /// The seed it ran with.
    public var seed: UInt64

    /// One line: `PASS happy-path (2.1 s)` or `FAIL … — reason — report: path`.
    public var verdict: String {
        let head = "\(passed ? "PASS" : "FAIL") \(name) (\(String(format: "%.1f", seconds)) s, seed \(seed))"
        guard !passed else { return head + (reportDirectory.map { " — report: \($0)" } ?? "") }
        let reason = failure.map { String($0.split(separator: "\n").first ?? "") } ?? ""
        return head + " — \(reason)" + (reportDirectory.map { " — report: \($0)" } ?? "")
    }
}

/// Runs scenarios against a fresh system each and writes their reports.
public enum ScenarioRunner {
    /// Where reports go unless told otherwise: `$TMPDIR/postbox-reports`.
    public static var defaultReportRoot: String {
        (ProcessInfo.processInfo.environment["POSTBOX_REPORT_DIR"] ?? NSTemporaryDirectory() + "postbox-reports")
    }

    /// Runs `scenario`; keeps its report when it fails, or always when `keepReport` is set.
    public static func run(
        _ scenario: Scenario,
        seed: UInt64 = 1,
        reportRoot: String = defaultReportRoot,
        keepReport: Bool = false
    ) async -> ScenarioResult {
        let started = ContinuousClock.now
        var failure: String?
        var violations: [Violation] = []
        var system: PostboxSystem?
        do {
            let created = try await PostboxSystem.create(name: scenario.name)
            system = created
            let context = ScenarioContext(system: created, shop: Shop(system: created), seed: seed)
            try await scenario.run(context)
            if scenario.checksInvariants {
                try await created.quiesce()
                violations = try await ConsistencyChecker(system: created, expectedDeadLetters: scenario.expectedDeadLetters).check()
                if !violations.isEmpty {
                    failure = "\(violations.count) invariant violation(s):\n" + violations.map { "  \($0)" }.joined(separator: "\n")
                }
            }
        } catch {
            failure = "\(error)"
            // A timeout from the system's own quiesce carries the dump already; every other failure gets one.
            if let system, !((error as? WaitTimedOut)?.diagnostic.hasPrefix("== diagnostic") ?? false) {
                failure! += "\n" + (await system.diagnostic())
            }
        }
        var exits: [String: ManagedProcess.Exit] = [:]
        if let system { exits = await system.shutdown() }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var result = ScenarioResult(
            name: scenario.name,
            passed: failure == nil,
            seconds: seconds,
            failure: failure,
            violations: violations,
            reportDirectory: nil,
            seed: seed
        )
        if let system, keepReport || failure != nil {
            result.reportDirectory = try? await ScenarioReport.write(
                scenario: scenario,
                result: result,
                system: system,
                exits: exits,
                root: reportRoot
            )
        }
        if let system, failure == nil { await system.dropDatabase() }
        return result
    }
}
