import Foundation
import SystemPackage

/// A data directory made by `initdb` once per PostgreSQL version and kept in a cache, so that a new cluster is a
/// copy (a few hundred milliseconds) instead of an `initdb` (one to two seconds).
///
/// The cache lives in `POSTBOX_CACHE_DIR`, else `/var/cache/postbox` for root, else `$XDG_CACHE_HOME/postbox` or
/// `~/.cache/postbox`. Several processes may create it at once: each runs `initdb` into a private directory and
/// renames it into place, and the loser throws its copy away.
struct ClusterTemplate {
    /// Bump when the `initdb` arguments change, so old caches are not reused.
    static let layoutVersion = 1
    static let superuser = "postgres"

    let installation: PostgresInstallation
    let account: SystemAccount?
    let environment: [String: String]

    /// The template's path, and how long `initdb` took if it had to run now.
    func ensure() async throws -> (path: FilePath, initdbDuration: Duration?) {
        let root = Self.cacheRoot(environment: environment)
        let target = root.appending("postgres-\(installation.version)-v\(Self.layoutVersion)")
        if FileManager.default.fileExists(atPath: target.appending("PG_VERSION").string) {
            return (target, nil)
        }
        try FileManager.default.createDirectory(
            atPath: root.string,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755]
        )
        let scratch = root.appending(".initdb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: scratch.string, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: scratch.string) }
        try account?.take(scratch.string)
        let data = scratch.appending("data")
        let clock = ContinuousClock()
        let started = clock.now
        _ = try await Command.run(
            installation.tool("initdb"),
            [
                "-D", data.string, "-U", Self.superuser, "--auth=trust", "--encoding=UTF8", "--locale=C",
                "--no-sync",
            ],
            as: account
        )
        let elapsed = clock.now - started
        if rename(data.string, target.string) != 0 {
            // Another process won the race; its template is as good as ours.
            guard FileManager.default.fileExists(atPath: target.appending("PG_VERSION").string) else {
                throw EmbeddedPostgresError(.commandFailed, "could not move the new template into \(target)")
            }
        }
        return (target, elapsed)
    }

    static func cacheRoot(environment: [String: String]) -> FilePath {
        if let explicit = environment["POSTBOX_CACHE_DIR"], !explicit.isEmpty { return FilePath(explicit) }
        if geteuid() == 0 { return FilePath("/var/cache/postbox") }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return FilePath(xdg).appending("postbox") }
        return FilePath(NSHomeDirectory()).appending(".cache/postbox")
    }
}
