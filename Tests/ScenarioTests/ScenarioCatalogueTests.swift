import Foundation
import Testing

@testable import PostboxScenarios

/// Every scenario of the catalogue against the real executables, one after another (each starts its own processes
/// on a fresh database). A failing scenario keeps its report; its path is in the failure message.
@Suite("failure-path scenarios", .serialized)
struct ScenarioCatalogueTests {
    /// `POSTBOX_SCENARIOS=a,b swift test --filter ScenarioCatalogueTests` runs only those.
    static let selected: Set<String>? = ProcessInfo.processInfo.environment["POSTBOX_SCENARIOS"].map {
        Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    @Test(arguments: Catalogue.all.map(\.name))
    func scenario(_ name: String) async throws {
        if let selected = Self.selected, !selected.contains(name) { return }
        let scenario = try #require(Catalogue.named(name))
        let result = await ScenarioRunner.run(scenario)
        #expect(result.passed, "\(result.verdict)\n\(result.failure ?? "")")
    }

    @Test func docsScenariosIsTheCatalogue() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/scenarios.md")
        #expect(
            try String(contentsOf: file, encoding: .utf8) == Catalogue.markdown,
            "regenerate with: swift run postbox scenario list --markdown > docs/scenarios.md"
        )
    }

    @Test func namesAreUniqueAndEveryScenarioTellsItsStory() {
        let names = Catalogue.all.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.count >= 25)
        for scenario in Catalogue.all {
            #expect(scenario.story.count > 80, "\(scenario.name) has a story")
            #expect(scenario.name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" }, "\(scenario.name) is kebab-case")
        }
    }
}

@Suite("soak schedule")
struct SoakScheduleTests {
    @Test func theSameSeedReplaysTheSameSchedule() {
        let first = SoakScenario.schedule(orders: 1000, seed: 42).map { "\($0.afterOrder) \($0.fault) \($0.target)" }
        let again = SoakScenario.schedule(orders: 1000, seed: 42).map { "\($0.afterOrder) \($0.fault) \($0.target)" }
        let other = SoakScenario.schedule(orders: 1000, seed: 43).map { "\($0.afterOrder) \($0.fault) \($0.target)" }
        #expect(first == again)
        #expect(first != other)
        #expect(first.count == 25)
    }
}
