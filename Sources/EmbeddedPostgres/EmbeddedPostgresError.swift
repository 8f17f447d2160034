/// An error from starting, controlling or stopping an embedded PostgreSQL server.
///
/// The `description` is one line that says what failed and, where there is one, what to do about it.
public struct EmbeddedPostgresError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; compare with the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`) were not found.
        public static let binariesNotFound = Code("binariesNotFound")
        /// The caller is root and no unprivileged account exists to run the server as.
        public static let noUnprivilegedAccount = Code("noUnprivilegedAccount")
        /// A command (`initdb`, `pg_ctl`, `cp`, …) exited with a failure.
        public static let commandFailed = Code("commandFailed")
        /// The server did not come up or did not accept a query.
        public static let notReady = Code("notReady")
        /// The caller passed a value that cannot be used (for example a database name).
        public static let invalidArgument = Code("invalidArgument")

        /// The code's name.
        public var description: String { name }
    }

    /// What kind of failure this is.
    public let code: Code
    /// A one-line explanation.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The one-line ``message``.
    public var description: String { message }
}
