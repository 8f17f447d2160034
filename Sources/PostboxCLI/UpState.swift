import Foundation

/// What a running `postbox up` writes for `postbox status`: its processes and the database it set up.
struct UpState: Codable, Sendable {
    struct Entry: Codable, Sendable {
        var name: String
        var pid: Int32?
        var port: Int
        var restarts: Int
    }

    var supervisorPid: Int32
    var portBase: Int
    /// The administrator URL of the system's database.
    var databaseURL: String
    var processes: [Entry]

    /// `<cache>/up-<port base>.json`; the cache is `POSTBOX_CACHE_DIR`, else `~/.cache/postbox`.
    static func path(portBase: Int) -> String {
        let environment = ProcessInfo.processInfo.environment
        let directory =
            environment["POSTBOX_CACHE_DIR"]
            ?? ((environment["HOME"] ?? NSTemporaryDirectory()) + "/.cache/postbox")
        return directory + "/up-\(portBase).json"
    }

    func write() throws {
        let path = Self.path(portBase: portBase)
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func read(portBase: Int) throws -> UpState? {
        guard let data = FileManager.default.contents(atPath: path(portBase: portBase)) else { return nil }
        return try JSONDecoder().decode(UpState.self, from: data)
    }

    static func remove(portBase: Int) {
        try? FileManager.default.removeItem(atPath: path(portBase: portBase))
    }
}
