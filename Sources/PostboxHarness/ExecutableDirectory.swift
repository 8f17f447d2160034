import Foundation
public import SystemPackage

/// Where this package's built executables are: beside the running executable (`postbox`, or the test bundle that
/// `swift test` builds next to them).
public enum ExecutableDirectory {
    /// The directory of the running executable.
    public static var current: FilePath {
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return FilePath(executable).removingLastComponent()
    }
}
