import Foundation
import PostboxHarness

/// Writes a scenario's report: `report.md` (story, verdict, faults, invariants, the timeline as a Mermaid sequence
/// diagram), `junit.xml`, and `logs/<process>.log` with every line each process printed.
enum ScenarioReport {
    static func write(
        scenario: Scenario,
        result: ScenarioResult,
        system: PostboxSystem,
        exits: [String: ManagedProcess.Exit],
        root: String
    ) async throws -> String {
        let stamp = iso(Date()).replacingOccurrences(of: ":", with: "-")
        let directory = "\(root)/\(scenario.name)-\(stamp)"
        let manager = FileManager.default
        try manager.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
        for process in system.processes {
            let text = process.lines.map { "\(iso($0.at)) \($0.text)" }.joined(separator: "\n") + "\n"
            try text.write(toFile: "\(directory)/logs/\(process.name).log", atomically: true, encoding: .utf8)
        }
        var text = "# Scenario `\(scenario.name)`: \(result.passed ? "PASS" : "FAIL")\n\n"
        text += "\(scenario.story)\n\n"
        text += "- seed: \(result.seed)\n- duration: \(String(format: "%.2f", result.seconds)) s\n- database: `\(system.database)`\n"
        if !scenario.faults.isEmpty { text += "- faults: " + scenario.faults.joined(separator: "; ") + "\n" }
        if !scenario.checks.isEmpty { text += "- checks: " + scenario.checks.joined(separator: "; ") + "\n" }
        text += "\n## Invariants\n\n"
        if scenario.checksInvariants {
            text +=
                result.violations.isEmpty && result.failure == nil
                ? "All hold.\n" : result.violations.map { "- \($0)\n" }.joined()
        } else {
            text += "Not checked: this scenario runs part of the system.\n"
        }
        if let failure = result.failure { text += "\n## Failure\n\n```\n\(failure)\n```\n" }
        text += "\n## Timeline\n\n"
        text += (try? await Timeline.mermaid(system: system)) ?? "(the bus could not be read)\n"
        text += "\n## Harness actions\n\n"
        for action in system.actions { text += "- \(iso(action.at)) \(action.target): \(action.what)\n" }
        text += "\n## Processes\n\n| process | last exit | log |\n| --- | --- | --- |\n"
        for process in system.processes {
            text += "| \(process.name) | \(exits[process.name]?.status ?? "-") | [logs/\(process.name).log](logs/\(process.name).log) |\n"
        }
        try text.write(toFile: directory + "/report.md", atomically: true, encoding: .utf8)
        let junit = JUnitReport.xml(
            suite: "postbox.scenarios",
            cases: [.init(name: scenario.name, className: "scenarios", seconds: result.seconds, failure: result.failure)]
        )
        try junit.write(toFile: directory + "/junit.xml", atomically: true, encoding: .utf8)
        return directory
    }
}
