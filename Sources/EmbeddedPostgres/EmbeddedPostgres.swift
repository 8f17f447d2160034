import Foundation
public import Logging
public import PostgresNIO
import Subprocess
public import SystemPackage

/// A PostgreSQL server started from the machine's own binaries, listening on loopback, for tests and local runs.
///
/// ``start(_:logger:)`` copies a cached `initdb` template (see the README for measured times), picks a free port,
/// starts the server with `pg_ctl` (as the `postgres` account when the caller is root, since PostgreSQL refuses to
/// run as root) and returns once it answers a query. The superuser is `postgres` with trust authentication on
/// 127.0.0.1 and a private socket directory only.
///
/// A throwaway server is deleted by ``stop()``; if the process dies first, even by SIGKILL, a watchdog process
/// stops the server and deletes its directory.
public final class EmbeddedPostgres: Sendable {
    /// The binaries this server runs.
    public let installation: PostgresInstallation
    /// Always `127.0.0.1`.
    public let host = "127.0.0.1"
    /// The TCP port the server listens on.
    public let port: Int
    /// The directory holding the server's Unix socket.
    public let socketDirectory: FilePath
    /// The data directory.
    public let dataDirectory: FilePath
    /// The server's log file.
    public let logFile: FilePath
    /// The superuser's name (`postgres`), which can connect without a password.
    public let superuser = ClusterTemplate.superuser
    /// How long starting took, step by step.
    public let timings: StartTimings

    private let account: SystemAccount?
    private let throwawayDirectory: FilePath?
    private let watchdog: Watchdog
    private let logger: Logger

    private init(
        installation: PostgresInstallation,
        port: Int,
        socketDirectory: FilePath,
        dataDirectory: FilePath,
        logFile: FilePath,
        timings: StartTimings,
        account: SystemAccount?,
        throwawayDirectory: FilePath?,
        watchdog: Watchdog,
        logger: Logger
    ) {
        self.installation = installation
        self.port = port
        self.socketDirectory = socketDirectory
        self.dataDirectory = dataDirectory
        self.logFile = logFile
        self.timings = timings
        self.account = account
        self.throwawayDirectory = throwawayDirectory
        self.watchdog = watchdog
        self.logger = logger
    }

    /// Starts a server and returns when it answers `SELECT 1`.
    public static func start(_ configuration: Configuration = .init(), logger: Logger) async throws -> EmbeddedPostgres {
        let environment = configuration.environment ?? ProcessInfo.processInfo.environment
        let installation = try await PostgresInstallation.locate(environment: environment)
        let account = try SystemAccount.forServer(environment: environment)
        let template = try await ClusterTemplate(installation: installation, account: account, environment: environment)
            .ensure()

        let base: FilePath
        let throwaway: FilePath?
        if let kept = configuration.dataDirectory {
            base = kept
            throwaway = nil
        } else {
            base = try makeTemporaryDirectory(environment: environment)
            throwaway = base
        }
        let data = base.appending("data")
        let socket = base.appending("socket")
        let log = base.appending("postgres.log")
        let watchdog = try await Watchdog(dataDirectory: data, removing: throwaway)

        let clock = ContinuousClock()
        var copyDuration = Duration.zero
        do {
            try FileManager.default.createDirectory(atPath: base.string, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: socket.string, withIntermediateDirectories: true)
            try account?.take(base.string)
            try account?.take(socket.string)
            if !FileManager.default.fileExists(atPath: data.appending("PG_VERSION").string) {
                let started = clock.now
                _ = try await Command.run(FilePath("/bin/cp"), ["-a", template.path.string, data.string])
                try account?.take(data.string)
                copyDuration = clock.now - started
            }

            var lastError: (any Error)?
            for _ in 0..<5 {
                let port = try configuration.port ?? FreePort.next()
                try writeSettings(
                    dataDirectory: data,
                    port: port,
                    socketDirectory: socket,
                    configuration: configuration
                )
                let started = clock.now
                do {
                    _ = try await Command.run(
                        installation.tool("pg_ctl"),
                        ["start", "-D", data.string, "-l", log.string, "-w", "-t", "60", "-s"],
                        as: account
                    )
                } catch {
                    lastError = error
                    let tail = (try? String(contentsOfFile: log.string, encoding: .utf8)) ?? ""
                    if configuration.port == nil, tail.contains("Address already in use") { continue }
                    throw error
                }
                try await waitUntilReady(port: port, logFile: log, logger: logger)
                let ready = EmbeddedPostgres(
                    installation: installation,
                    port: port,
                    socketDirectory: socket,
                    dataDirectory: data,
                    logFile: log,
                    timings: StartTimings(initdb: template.initdbDuration, copy: copyDuration, start: clock.now - started),
                    account: account,
                    throwawayDirectory: throwaway,
                    watchdog: watchdog,
                    logger: logger
                )
                logger.debug(
                    "embedded postgres ready",
                    metadata: ["postgres.port": "\(port)", "postgres.data": "\(data)", "postgres.version": "\(installation.version)"]
                )
                return ready
            }
            throw lastError ?? EmbeddedPostgresError(.notReady, "could not find a free port for PostgreSQL")
        } catch {
            watchdog.release()
            throw error
        }
    }

    /// Connection settings for a database on this server, as the superuser unless told otherwise.
    public func configuration(
        database: String = "postgres",
        username: String? = nil,
        password: String? = nil
    ) -> PostgresClient.Configuration {
        PostgresClient.Configuration(
            host: host,
            port: port,
            username: username ?? superuser,
            password: password,
            database: database,
            tls: .disable
        )
    }

    /// Settings for a single connection (outside any pool) to a database on this server, as the superuser.
    public func connectionConfiguration(database: String = "postgres") -> PostgresConnection.Configuration {
        PostgresConnection.Configuration(
            host: host,
            port: port,
            username: superuser,
            password: nil,
            database: database,
            tls: .disable
        )
    }

    /// A `postgres://` URL for a database on this server, for child processes and `psql`.
    public func url(database: String = "postgres", username: String? = nil, password: String? = nil) -> String {
        let user = username ?? superuser
        let credentials = password.map { "\(user):\($0)" } ?? user
        return "postgres://\(credentials)@\(host):\(port)/\(database)?sslmode=disable"
    }

    /// Stops the server and starts it again on the same port and data; returns when it answers a query.
    ///
    /// `.immediate` is a crash: clients see their connections reset and the server recovers from the WAL.
    public func restart(_ mode: ShutdownMode = .fast) async throws {
        _ = try await Command.run(
            installation.tool("pg_ctl"),
            ["restart", "-D", dataDirectory.string, "-l", logFile.string, "-m", mode.rawValue, "-w", "-t", "60", "-s"],
            as: account
        )
        try await Self.waitUntilReady(port: port, logFile: logFile, logger: logger)
    }

    /// Stops the server and, if it is a throwaway one, deletes its directory. Safe to call more than once.
    public func stop(_ mode: ShutdownMode = .fast) async throws {
        if FileManager.default.fileExists(atPath: dataDirectory.appending("postmaster.pid").string) {
            _ = try await Command.run(
                installation.tool("pg_ctl"),
                ["stop", "-D", dataDirectory.string, "-m", mode.rawValue, "-w", "-s"],
                as: account
            )
        }
        if let throwawayDirectory {
            try? FileManager.default.removeItem(atPath: throwawayDirectory.string)
        }
        watchdog.release()
    }

    /// The process id of the postmaster, read from `postmaster.pid`.
    public func postmasterProcessID() throws -> Int32 {
        let contents = try String(contentsOfFile: dataDirectory.appending("postmaster.pid").string, encoding: .utf8)
        guard let line = contents.split(separator: "\n").first, let pid = Int32(line) else {
            throw EmbeddedPostgresError(.notReady, "postmaster.pid in \(dataDirectory) has no process id")
        }
        return pid
    }

    /// Runs statements as the superuser on `database` over a short-lived connection.
    public func execute(_ statements: [PostgresQuery], database: String = "postgres") async throws {
        try await Self.execute(statements, port: port, database: database, logger: logger)
    }

    private static func execute(_ statements: [PostgresQuery], port: Int, database: String, logger: Logger) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: PostgresConnection.Configuration(
                host: "127.0.0.1",
                port: port,
                username: ClusterTemplate.superuser,
                password: nil,
                database: database,
                tls: .disable
            ),
            id: 1,
            logger: logger
        )
        do {
            for statement in statements { try await connection.query(statement, logger: logger) }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    /// Creates a database, optionally as a copy of `template` (which must have no open connections).
    public func createDatabase(_ name: String, template: String? = nil) async throws {
        try Self.validate(databaseName: name)
        if let template { try Self.validate(databaseName: template) }
        let clause = template.map { " TEMPLATE \"\($0)\"" } ?? ""
        try await execute(["CREATE DATABASE \"\(unescaped: name)\"\(unescaped: clause)"])
    }

    /// Whether a database of this name exists.
    public func databaseExists(_ name: String) async throws -> Bool {
        try await withConnection { connection in
            let rows = try await connection.query("SELECT 1 FROM pg_database WHERE datname = \(name)", logger: logger)
            for try await _ in rows { return true }
            return false
        }
    }

    /// Runs `body` on a short-lived connection to `database` as the superuser, closing it afterwards.
    public func withConnection<Result: Sendable>(
        database: String = "postgres",
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let connection = try await PostgresConnection.connect(
            configuration: connectionConfiguration(database: database),
            id: 1,
            logger: logger
        )
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Drops a database, disconnecting its sessions first.
    public func dropDatabase(_ name: String) async throws {
        try Self.validate(databaseName: name)
        try await execute(["DROP DATABASE IF EXISTS \"\(unescaped: name)\" WITH (FORCE)"])
    }

    deinit {
        watchdog.release()
    }

    private static func waitUntilReady(port: Int, logFile: FilePath, logger: Logger) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        var lastError: (any Error)?
        while clock.now < deadline {
            do {
                try await execute(["SELECT 1"], port: port, database: "postgres", logger: logger)
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        throw EmbeddedPostgresError(
            .notReady,
            "PostgreSQL on port \(port) did not answer a query within 30 s (\(String(reflecting: lastError))); see \(logFile)"
        )
    }

    private static func validate(databaseName name: String) throws {
        let allowed = name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
        guard !name.isEmpty, name.utf8.count <= 63, allowed else {
            throw EmbeddedPostgresError(
                .invalidArgument,
                "database name '\(name)' must be 1–63 characters of a–z, 0–9 and _"
            )
        }
    }

    private static func makeTemporaryDirectory(environment: [String: String]) throws -> FilePath {
        let parent = environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(parent)/postbox-pg-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw EmbeddedPostgresError(.commandFailed, "mkdtemp in \(parent) failed: \(String(cString: strerror(errno)))")
        }
        chmod(created, 0o755)
        return FilePath(String(cString: created))
    }

    private static func writeSettings(
        dataDirectory: FilePath,
        port: Int,
        socketDirectory: FilePath,
        configuration: Configuration
    ) throws {
        var settings: [(String, String)] = [
            ("listen_addresses", "'127.0.0.1'"),
            ("port", "\(port)"),
            ("unix_socket_directories", "'\(socketDirectory.string)'"),
            ("max_connections", "300"),
        ]
        if configuration.durability == .fast {
            settings += [("fsync", "off"), ("full_page_writes", "off")]
        }
        settings += configuration.settings.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let text =
            "# Written by EmbeddedPostgres at each start.\n"
            + settings.map { "\($0.0) = \($0.1)" }.joined(separator: "\n") + "\n"
        try text.write(toFile: dataDirectory.appending("postgresql.auto.conf").string, atomically: false, encoding: .utf8)
    }
}
