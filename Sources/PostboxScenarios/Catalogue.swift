/// Every named scenario, in the order `postbox scenario list` shows them. See docs/scenarios.md.
public enum Catalogue {
    /// Every scenario, in catalogue order.
    public static let all: [Scenario] =
        FlowScenarios.all + ProcessorScenarios.all + CrashScenarios.all + InfrastructureScenarios.all
        + BusScenarios.all + IncrementalScenarios.all + [SoakScenario.soak]

    /// The scenario called `name`.
    public static func named(_ name: String) -> Scenario? { all.first { $0.name == name } }
}
