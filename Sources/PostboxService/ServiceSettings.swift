public import Logging

/// The settings every Postbox service reads at start.
///
/// | key | environment variable | type | default |
/// | --- | --- | --- | --- |
/// | `database.url` | `DATABASE_URL` | `postgres://` URL of the service's own role, secret | required |
/// | `http.host` | `HTTP_HOST` | address to bind | `127.0.0.1` |
/// | `http.port` | `HTTP_PORT` | port, 0 for any free one | the service's default |
/// | `log.level` | `LOG_LEVEL` | `trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical` | `info` |
/// | `instance.name` | `INSTANCE_NAME` | this instance's name in logs and leases | `<service>-<pid>` |
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
    }
}
