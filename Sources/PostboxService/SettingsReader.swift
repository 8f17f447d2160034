public import Configuration
public import Foundation

/// Reads a service's settings through swift-configuration and turns every missing or malformed value into a
/// ``ConfigurationError`` that names the environment variable.
///
/// Keys are dotted (`database.url`); their environment variable is the name swift-configuration derives
/// (`DATABASE_URL`). Values are read as strings and parsed here, so a malformed value is an error rather than a
/// silent fallback to the default.
public struct SettingsReader: Sendable {
    /// The underlying reader.
    public let config: ConfigReader

    /// Reads from `config`.
    public init(config: ConfigReader) {
        self.config = config
    }

    /// Reads from the process environment.
    public static func environment() -> SettingsReader {
        SettingsReader(config: ConfigReader(provider: EnvironmentVariablesProvider()))
    }

    /// Reads from the given variables only (tests).
    public static func environment(_ variables: [String: String]) -> SettingsReader {
        SettingsReader(config: ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: variables)))
    }

    /// The environment variable that holds `key`: `database.url` → `DATABASE_URL`, `http.serverName` →
    /// `HTTP_SERVER_NAME`.
    public static func variableName(forKey key: String) -> String {
        var name = ""
        for character in key {
            if character == "." || character == "-" {
                name.append("_")
            } else if character.isUppercase, let last = name.last, last != "_" {
                name.append("_")
                name.append(character)
            } else {
                name.append(character.uppercased())
            }
        }
        return name
    }

    /// A required string; empty counts as missing.
    public func requiredString(_ key: String, isSecret: Bool = false) throws -> String {
        guard let value = string(key, isSecret: isSecret) else {
            throw ConfigurationError(variable: Self.variableName(forKey: key), problem: "is missing")
        }
        return value
    }

    /// An optional string; empty counts as unset.
    public func string(_ key: String, isSecret: Bool = false) -> String? {
        guard let value = config.string(forKey: ConfigKey(key), isSecret: isSecret)?.trimmingCharacters(in: .whitespaces),
            !value.isEmpty
        else { return nil }
        return value
    }

    /// An integer within `range`, or `defaultValue` when unset.
    public func int(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>, meaning: String) throws -> Int {
        guard let text = string(key) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(
                variable: Self.variableName(forKey: key),
                problem: "must be \(meaning) (\(range.lowerBound)-\(range.upperBound)), got '\(text)'"
            )
        }
        return value
    }

    /// One of `allowed`, or `defaultValue` when unset; matching ignores case.
    public func choice(_ key: String, default defaultValue: String, allowed: [String]) throws -> String {
        guard let text = string(key) else { return defaultValue }
        guard let value = allowed.first(where: { $0.caseInsensitiveCompare(text) == .orderedSame }) else {
            throw ConfigurationError(
                variable: Self.variableName(forKey: key),
                problem: "must be one of \(allowed.joined(separator: ", ")), got '\(text)'"
            )
        }
        return value
    }

    /// An absolute `http://` or `https://` URL.
    public func requiredHTTPURL(_ key: String) throws -> URL {
        let text = try requiredString(key)
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw ConfigurationError(
                variable: Self.variableName(forKey: key),
                problem: "must be an http:// or https:// URL, got '\(text)'"
            )
        }
        return url
    }
}
