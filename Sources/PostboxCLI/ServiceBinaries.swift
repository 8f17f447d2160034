import Foundation
import Subprocess
import SystemPackage

/// Finds the service executables beside the running `postbox`, building them first when `postbox` runs from a
/// package checkout (`swift run postbox up`), so edited services are not run stale — and so that they exist at all
/// on a fresh clone, where `swift run postbox` builds only `postbox`.
enum ServiceBinaries {
    static func locate(build: Bool, printer: LogPrinter) async throws -> FilePath {
        try await locate(build: build) { printer.note($0) }
    }

    /// The same, telling `note` what it does.
    static func locate(build: Bool, note: (String) -> Void) async throws -> FilePath {
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        let directory = FilePath(executable).removingLastComponent()
        if build, let root = packageRoot(of: directory.string) {
            let configuration = directory.string.contains("/release") ? "release" : "debug"
            note("building the services (swift build -c \(configuration))…")
            let result = try await Subprocess.run(
                .name("swift"),
                arguments: ["build", "-c", configuration, "--package-path", root],
                output: .string(limit: 1 << 22),
                error: .string(limit: 1 << 22)
            )
            guard result.terminationStatus.isSuccess else {
                throw ValidationFailure(
                    "swift build failed (\(result.terminationStatus)):\n\(result.standardOutput)\(result.standardError)"
                )
            }
        }
        let missing = SystemProcess.all.map(\.name).filter {
            !FileManager.default.isExecutableFile(atPath: directory.appending($0).string)
        }
        guard missing.isEmpty else {
            throw ValidationFailure(
                "\(missing.joined(separator: ", ")) not found beside \(executable); run `swift build` in the package first"
            )
        }
        return directory
    }

    /// The package checkout that holds `directory` (`<root>/.build/...`), if any.
    private static func packageRoot(of directory: String) -> String? {
        guard let range = directory.range(of: "/.build/") else { return nil }
        let root = String(directory[..<range.lowerBound])
        return FileManager.default.fileExists(atPath: root + "/Package.swift") ? root : nil
    }
}
