/// A named, reproducible failure-path scenario: what breaks, what a user should expect, and what is checked.
///
/// `run` drives the system (start processes, place orders, inject faults) and checks what is specific to the
/// scenario; the runner then waits until the system is quiet and checks every consistency invariant.
public struct Scenario: Sendable, Identifiable, CustomStringConvertible {
    /// Kebab-case, unique: `payments-crash-after-charge`.
    public var name: String
    /// One paragraph: what breaks, and what the user should expect.
    public var story: String
    /// The faults it injects.
    public var faults: [String]
    /// What it checks beyond the invariants.
    public var checks: [String]
    /// How many dead letters the end state holds on purpose.
    public var expectedDeadLetters: Int
    /// Whether the runner checks the invariants once quiet (scenarios without the whole system opt out).
    public var checksInvariants: Bool
    /// The scenario itself.
    public var run: @Sendable (ScenarioContext) async throws -> Void

    /// Creates the value from its parts.
    public init(
        _ name: String,
        story: String,
        faults: [String] = [],
        checks: [String] = [],
        expectedDeadLetters: Int = 0,
        checksInvariants: Bool = true,
        run: @escaping @Sendable (ScenarioContext) async throws -> Void
    ) {
        self.name = name
        self.story = story
        self.faults = faults
        self.checks = checks
        self.expectedDeadLetters = expectedDeadLetters
        self.checksInvariants = checksInvariants
        self.run = run
    }

    public var id: String { name }
    public var description: String { name }
}

/// What a scenario works with.
public struct ScenarioContext: Sendable {
    /// The system under test.
    public let system: PostboxSystem
    /// Its public APIs.
    public let shop: Shop
    /// The run's seed (printed with every verdict); use it for any randomness so a run replays exactly.
    public let seed: UInt64

    /// Fails the scenario with `message` unless `condition` holds.
    public func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw ScenarioFailure(message()) }
    }

    /// A generator seeded with ``seed``.
    public func random() -> SeededGenerator { SeededGenerator(seed: seed) }
}

/// A scenario-specific check that did not hold.
public struct ScenarioFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// SplitMix64: small, fast, and the same sequence for the same seed on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates the value from its parts.
    public init(seed: UInt64) { state = seed }

    /// The next number of the sequence.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
