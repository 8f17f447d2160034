import ArgumentParser
import Foundation
import PostboxHarness
import PostboxScenarios

/// `postbox scenario list|run`: the failure-path catalogue against fresh systems.
struct ScenarioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract: "List or run the failure-path scenarios (see docs/scenarios.md).",
        subcommands: [List.self, Run.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every scenario with its story.")

        @Flag(help: "Only the names.")
        var names = false
        @Flag(help: "The catalogue as Markdown (docs/scenarios.md).")
        var markdown = false

        func run() async throws {
            if markdown { return print(Catalogue.markdown, terminator: "") }
            for scenario in Catalogue.all {
                if names {
                    print(scenario.name)
                } else {
                    print("\(scenario.name)\n    \(scenario.story.replacingOccurrences(of: "\n", with: " "))\n")
                }
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run scenarios against a fresh system each: one verdict line each, then a summary; exit 1 if any failed."
        )

        @Argument(help: "Scenario names (see `postbox scenario list`).")
        var names: [String] = []
        @Flag(help: "Run the whole catalogue.")
        var all = false
        @Option(help: "The seed for anything random (printed with every verdict).")
        var seed: UInt64 = 1
        @Option(help: "Keep every report in this directory (by default only failed runs keep theirs, under $TMPDIR/postbox-reports).")
        var report: String?

        func validate() throws {
            guard all != !names.isEmpty else { throw ValidationError("name scenarios or pass --all, not both") }
            let unknown = names.filter { Catalogue.named($0) == nil }
            guard unknown.isEmpty else {
                throw ValidationError("unknown scenario(s): \(unknown.joined(separator: ", ")); see `postbox scenario list`")
            }
        }

        func run() async throws {
            _ = try await ServiceBinaries.locate(build: true) { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
            let scenarios = all ? Catalogue.all : names.compactMap(Catalogue.named)
            let root = report ?? ScenarioRunner.defaultReportRoot
            var results: [ScenarioResult] = []
            for scenario in scenarios {
                let result = await ScenarioRunner.run(scenario, seed: seed, reportRoot: root, keepReport: report != nil)
                print(result.verdict)
                results.append(result)
            }
            let failed = results.filter { !$0.passed }
            let seconds = results.reduce(0) { $0 + $1.seconds }
            print(String(format: "%d passed, %d failed (%.1f s)", results.count - failed.count, failed.count, seconds))
            if let report {
                let junit = JUnitReport.xml(
                    suite: "postbox.scenarios",
                    cases: results.map { .init(name: $0.name, className: "scenarios", seconds: $0.seconds, failure: $0.failure) }
                )
                try FileManager.default.createDirectory(atPath: report, withIntermediateDirectories: true)
                try junit.write(toFile: report + "/junit.xml", atomically: true, encoding: .utf8)
                print("reports: \(report)")
            }
            if !failed.isEmpty { throw ExitCode(1) }
        }
    }
}
