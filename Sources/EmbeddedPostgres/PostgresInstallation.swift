import Foundation
import Subprocess
public import SystemPackage

/// The PostgreSQL server binaries found on this machine (`initdb`, `pg_ctl`, `postgres`).
///
/// ``locate(environment:)`` looks, in order, at `POSTGRES_BIN_DIR`, the `PATH`, `pg_config --bindir`,
/// `/usr/lib/postgresql/*/bin` (newest first) and the Homebrew and Postgres.app locations.
public struct PostgresInstallation: Sendable, Hashable {
    /// The directory holding `initdb`, `pg_ctl` and `postgres`.
    public let binDirectory: FilePath
    /// The server's version as it reports it, for example `15.18`.
    public let version: String

    /// The path of one of the server's programs.
    public func tool(_ name: String) -> FilePath { binDirectory.appending(name) }

    /// Finds the server binaries, or throws an error whose message says what to install.
    ///
    /// - Parameter environment: Where to read `POSTGRES_BIN_DIR` and `PATH`; `nil` for this process's.
    public static func locate(
        environment: [String: String]? = nil
    ) async throws -> PostgresInstallation {
        try await locate(environment: environment, searchWellKnownLocations: true)
    }

    static func locate(
        environment: [String: String]?,
        searchWellKnownLocations: Bool
    ) async throws -> PostgresInstallation {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let candidates = await candidateDirectories(environment: environment, wellKnown: searchWellKnownLocations)
        for directory in candidates where hasServerBinaries(directory) {
            let directory = resolvingSymlinks(directory)
            let output = try await Command.run(directory.appending("postgres"), ["--version"])
            // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
            let version = output.split(separator: " ").dropFirst(2).first.map(String.init) ?? "unknown"
            return PostgresInstallation(binDirectory: directory, version: version)
        }
        throw EmbeddedPostgresError(
            .binariesNotFound,
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in POSTGRES_BIN_DIR, PATH, "
                + "pg_config --bindir or /usr/lib/postgresql/*/bin; install them (Debian/Ubuntu: apt-get install postgresql; "
                + "macOS: brew install postgresql@15) or set POSTGRES_BIN_DIR"
        )
    }

    private static func candidateDirectories(environment: [String: String], wellKnown: Bool) async -> [FilePath] {
        var candidates: [FilePath] = []
        if let explicit = environment["POSTGRES_BIN_DIR"], !explicit.isEmpty { candidates.append(FilePath(explicit)) }
        for entry in (environment["PATH"] ?? "").split(separator: ":") { candidates.append(FilePath(String(entry))) }
        guard wellKnown else { return candidates }
        if let bindir = try? await Command.run(FilePath("pg_config"), ["--bindir"], searchPath: true) {
            candidates.append(FilePath(bindir.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let debianRoot = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: debianRoot)) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            candidates.append(FilePath("\(debianRoot)/\(version)/bin"))
        }
        candidates += [
            "/opt/homebrew/bin", "/usr/local/bin", "/opt/homebrew/opt/postgresql@15/bin",
            "/usr/local/opt/postgresql@15/bin", "/Applications/Postgres.app/Contents/Versions/latest/bin",
        ].map { FilePath($0) }
        return candidates
    }

    private static func hasServerBinaries(_ directory: FilePath) -> Bool {
        ["initdb", "pg_ctl", "postgres"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: directory.appending($0).string)
        }
    }

    /// `/usr/local/bin/initdb` may be a link into `/usr/lib/postgresql/15/bin`; the server wants its real home.
    private static func resolvingSymlinks(_ directory: FilePath) -> FilePath {
        let initdb = URL(fileURLWithPath: directory.appending("initdb").string).resolvingSymlinksInPath()
        return FilePath(initdb.deletingLastPathComponent().path)
    }
}
