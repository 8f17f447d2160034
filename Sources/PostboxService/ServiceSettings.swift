public import Logging
public import PostgresNIO

/// The settings every Postbox service reads at start.
///
/// | key | environment variable | type | default |
/// | --- | --- | --- | --- |
/// | `database.url` | `DATABASE_URL` | `postgres://` URL of the service's own role, secret | required |
/// | `http.host` | `HTTP_HOST` | address to bind | `127.0.0.1` |
/// | `http.port` | `HTTP_PORT` | port, 0 for any free one | the service's default |
/// | `log.level` | `LOG_LEVEL` | `trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical` | `info` |
/// | `instance.name` | `INSTANCE_NAME` | this instance's name in logs and leases | `<service>-<pid>` |
/// | `database.pool.maximum` | `DATABASE_POOL_MAXIMUM` | connections open at most, 1–1000 | `20` |
/// | `database.keepAlive.seconds` | `DATABASE_KEEP_ALIVE_SECONDS` | ping idle connections this often, 0 for never | `0` |
///
/// The pool pings no idle connection by default, unlike PostgresNIO's (a `SELECT 1` every 30 s), on purpose. Its
/// pool starts a keep-alive timer each time a connection goes back idle; a timer cancelled by the next lease still
/// fires at its deadline, so a service leasing hundreds of connections a second keeps thousands of dead timers and,
/// from 30 s on, wakes up for each of them. Set a keep-alive where something between the service and PostgreSQL
/// drops idle connections silently (a NAT or a load balancer). The pool keeps no minimum of connections open:
/// PostgresNIO 1.33.2 traps when a request arrives while fewer than its minimum are open, as after a PostgreSQL
/// restart.
public struct ServiceSettings: Sendable {
    /// Where the service's schema and the bus live, as the service's own role.
    public var database: DatabaseURL
    /// The address the HTTP server binds.
    public var httpHost: String
    /// The port the HTTP server binds; 0 picks a free one (the chosen port is logged).
    public var httpPort: Int
    /// The minimum level logged.
    public var logLevel: Logger.Level
    /// This instance's name in logs and bus leases.
    public var instanceName: String?
    /// Connections the pool opens at most.
    public var poolMaximum: Int
    /// How often the pool pings an idle connection; nil for never.
    public var keepAlive: Duration?

    /// The pool settings for ``database``, with the maximum and keep-alive above.
    public var clientConfiguration: PostgresClient.Configuration {
        var configuration = database.configuration
        configuration.options.maximumConnections = poolMaximum
        configuration.options.keepAliveBehavior = keepAlive.map { .init(frequency: $0) }
        return configuration
    }

    /// Reads the settings; throws a ``ConfigurationError`` naming the first bad variable.
    public init(reader: SettingsReader, defaultPort: Int) throws {
        let url = try reader.requiredString("database.url", isSecret: true)
        do {
            database = try DatabaseURL(url)
        } catch let error as DatabaseURLError {
            throw ConfigurationError(variable: "DATABASE_URL", problem: error.description)
        }
        httpHost = reader.string("http.host") ?? "127.0.0.1"
        httpPort = try reader.int("http.port", default: defaultPort, in: 0...65535, meaning: "a port number")
        let level = try reader.choice(
            "log.level",
            default: "info",
            allowed: Logger.Level.allCases.map(\.rawValue)
        )
        logLevel = Logger.Level(rawValue: level) ?? .info
        instanceName = reader.string("instance.name")
        poolMaximum = try reader.int("database.pool.maximum", default: 20, in: 1...1000, meaning: "a connection count")
        let keepAliveSeconds = try reader.int(
            "database.keepAlive.seconds",
            default: 0,
            in: 0...86_400,
            meaning: "a number of seconds, 0 for never"
        )
        keepAlive = keepAliveSeconds > 0 ? .seconds(keepAliveSeconds) : nil
    }
}
