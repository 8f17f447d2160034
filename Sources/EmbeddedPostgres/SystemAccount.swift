import Foundation

/// The operating-system account the server runs as: the current user, or an unprivileged one when we are root.
///
/// PostgreSQL refuses to run as root, so a root caller runs `initdb`, `pg_ctl` and the server as the account
/// named by `POSTGRES_RUN_AS` (default `postgres`, which the Debian and Homebrew packages create).
struct SystemAccount: Sendable, Hashable {
    let name: String
    let userID: UInt32
    let groupID: UInt32

    /// The account to run as, or `nil` to run as the current user.
    static func forServer(environment: [String: String]) throws -> SystemAccount? {
        guard geteuid() == 0 else { return nil }
        let name = environment["POSTGRES_RUN_AS"] ?? "postgres"
        guard let entry = getpwnam(name) else {
            throw EmbeddedPostgresError(
                .noUnprivilegedAccount,
                "PostgreSQL refuses to run as root and there is no '\(name)' account; create one "
                    + "(useradd --system \(name)) or set POSTGRES_RUN_AS to an unprivileged account"
            )
        }
        return SystemAccount(name: name, userID: entry.pointee.pw_uid, groupID: entry.pointee.pw_gid)
    }

    /// Gives a file or directory tree to this account.
    func take(_ path: String) throws {
        guard chown(path, userID, groupID) == 0 else {
            throw EmbeddedPostgresError(.commandFailed, "chown \(path) to \(name) failed: \(String(cString: strerror(errno)))")
        }
    }
}
