import Foundation
import Subprocess
import SystemPackage

/// Runs a short-lived command to completion and returns its standard output, or throws with its output.
enum Command {
    static func run(
        _ executable: FilePath,
        _ arguments: [String],
        as account: SystemAccount? = nil,
        searchPath: Bool = false,
        environment: [String: String] = [:]
    ) async throws -> String {
        var options = PlatformOptions()
        if let account {
            options.userID = account.userID
            options.groupID = account.groupID
            options.supplementaryGroups = []
        }
        let updates = environment.reduce(into: [Environment.Key: String?]()) { $0[Environment.Key(stringLiteral: $1.key)] = $1.value }
        let result = try await Subprocess.run(
            searchPath ? .name(executable.string) : .path(executable),
            arguments: Arguments(arguments),
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
