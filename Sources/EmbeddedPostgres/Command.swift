import Foundation
import Subprocess
import SystemPackage

/// Runs a short-lived command to completion and returns its standard output, or throws with its output.
enum Command {
    /// util-linux's `setpriv`, which runs a program as another user.
    static let setpriv = FilePath("/usr/bin/setpriv")

    static func run(
        _ executable: FilePath,
        _ arguments: [String],
        as account: SystemAccount? = nil,
        searchPath: Bool = false,
        environment: [String: String] = [:]
    ) async throws -> String {
        var options = PlatformOptions()
        var program: Executable = searchPath ? .name(executable.string) : .path(executable)
        var programArguments = arguments
        if let account {
            if FileManager.default.isExecutableFile(atPath: setpriv.string) {
                // Switch user in a fresh process: asking Subprocess for another uid makes it fork this (heavily
                // threaded) process instead of posix_spawn, and a forked child can deadlock on a lock another thread
                // held at fork time — the parent then waits for its exec for ever.
                programArguments =
                    [
                        "--reuid=\(account.userID)", "--regid=\(account.groupID)", "--clear-groups", "--",
                        executable.string,
                    ] + arguments
                program = .path(setpriv)
            } else {
                options.userID = account.userID
                options.groupID = account.groupID
                options.supplementaryGroups = []
            }
        }
        let updates = environment.reduce(into: [Environment.Key: String?]()) { $0[Environment.Key(stringLiteral: $1.key)] = $1.value }
        let result = try await Subprocess.run(
            program,
            arguments: Arguments(programArguments),
            environment: .inherit.updating(updates),
            platformOptions: options,
            output: .string(limit: 1 << 20),
            error: .string(limit: 1 << 20)
        )
        guard result.terminationStatus.isSuccess else {
            let detail = (result.standardError + result.standardOutput)
                .split(separator: "\n").suffix(3).joined(separator: " | ")
            throw EmbeddedPostgresError(
                .commandFailed,
                "\(executable.lastComponent?.string ?? executable.string) \(arguments.joined(separator: " ")) failed "
                    + "(\(result.terminationStatus)): \(detail)"
            )
        }
        return result.standardOutput
    }
}
