import Foundation
import PostboxScenarios
import Testing

/// Every scenario of the catalogue against the real executables, one after another (each starts its own processes
/// on a fresh database). A failing scenario keeps its report; its path is in the failure message.
@Suite("failure-path scenarios", .serialized)
struct ScenarioCatalogueTests {
    @Test(arguments: Catalogue.all.map(\.name))
    func scenario(_ name: String) async throws {
        let scenario = try #require(Catalogue.named(name))
        let result = await ScenarioRunner.run(scenario)
        #expect(result.passed, "\(result.verdict)\n\(result.failure ?? "")")
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
