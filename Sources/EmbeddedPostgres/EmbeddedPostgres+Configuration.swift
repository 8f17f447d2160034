public import SystemPackage

extension EmbeddedPostgres {
    /// How durable commits are. Throwaway test clusters use ``fast``; benchmarks use ``default``.
    public enum Durability: Sendable {
        /// PostgreSQL's defaults: `fsync`, `synchronous_commit` and `full_page_writes` on.
        case `default`
        /// `fsync` and `full_page_writes` off. Commits are still written to the operating system before they
        /// return (`synchronous_commit` stays on), so they survive a server crash or an immediate restart, but not
        /// a machine crash: only for data you can throw away.
        case fast
    }

    /// How to start an embedded server.
    public struct Configuration: Sendable {
        /// Commit durability; see ``Durability``.
        public var durability: Durability
        /// Keep the data here between runs; `nil` makes a throwaway directory that is deleted on stop.
        public var dataDirectory: FilePath?
        /// The TCP port on 127.0.0.1; `nil` picks a free one.
        public var port: Int?
        /// Extra `postgresql.conf` settings, for example `["log_min_duration_statement": "0"]`.
        public var settings: [String: String]
        /// The environment consulted for `POSTGRES_BIN_DIR`, `POSTGRES_RUN_AS`, `POSTBOX_CACHE_DIR` and `TMPDIR`.
        public var environment: [String: String]?

        /// Creates a configuration; the defaults give a throwaway server with PostgreSQL's durability.
        public init(
            durability: Durability = .default,
            dataDirectory: FilePath? = nil,
            port: Int? = nil,
            settings: [String: String] = [:],
            environment: [String: String]? = nil
        ) {
            self.durability = durability
            self.dataDirectory = dataDirectory
            self.port = port
            self.settings = settings
            self.environment = environment
        }
    }

    /// How to stop the server, as `pg_ctl -m` names the modes.
    public enum ShutdownMode: String, Sendable {
        /// Disconnect clients, roll back their transactions and shut down cleanly.
        case fast
        /// Abort at once, as a crash would; the next start replays the WAL.
        case immediate
    }

    /// How long the steps of ``EmbeddedPostgres/start(_:logger:)`` took.
    public struct StartTimings: Sendable {
        /// `initdb` into the cache, or `nil` when the cached template was reused.
        public var initdb: Duration?
        /// Copying the template into the new data directory (zero for a kept data directory that existed).
        public var copy: Duration
        /// `pg_ctl start` until the server answered `SELECT 1`.
        public var start: Duration
    }
}
