/// One numbered step of a schema's history: statements run in one transaction, once per database.
public struct SchemaMigration: Sendable {
    /// Position in the history; applied in ascending order, never reused.
    public var version: Int
    /// A short description, recorded beside the version.
    public var name: String
    /// The SQL statements, one per element (the extended protocol runs one statement per query).
    public var statements: [String]

    /// Creates a migration; `statements` run in order in one transaction.
    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}
