/// A configuration value that stops a service at start: names the environment variable and what was wrong.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    /// The environment variable, for example `DATABASE_URL`.
    public let variable: String
    /// What was wrong with it, for example `is missing` or `must be a port number (1-65535), got 'abc'`.
    public let problem: String

    /// Creates an error for `variable`.
    public init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }

    /// One line: `DATABASE_URL is missing`.
    public var description: String { "\(variable) \(problem)" }
}
