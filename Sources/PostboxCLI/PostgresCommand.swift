import ArgumentParser
import EmbeddedPostgres
import Foundation
import Logging
import ServiceLifecycle
import SystemPackage
import UnixSignals

/// `postbox postgres`: a throwaway PostgreSQL for ad-hoc work, until Ctrl-C.
///
/// It prints `ready <url> <data directory> <postmaster pid>` on one line once the server answers queries. When this
/// command ends, however it ends (Ctrl-C, SIGTERM, or SIGKILL), the server is stopped and its files deleted.
struct PostgresCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "Start a throwaway PostgreSQL on a free loopback port and print its URL; Ctrl-C removes it."
    )

    @Option(help: "Keep the data in this directory between runs instead of a throwaway one.")
    var dataDir: String?
    @Option(help: "Listen on this port instead of a free one.")
    var port: Int?

    func run() async throws {
        let logger = Logger(label: "postbox.postgres")
        let server = try await EmbeddedPostgres.start(
            .init(durability: .default, dataDirectory: dataDir.map { FilePath($0) }, port: port), logger: logger
        )
        print("ready \(server.url()) \(server.dataDirectory) \(try server.postmasterProcessID())")
        FileHandle.standardOutput.synchronizeFile()
        let group = ServiceGroup(
            services: [UntilShutdown()], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        )
        try await group.run()
        try await server.stop()
    }
}

/// A service that does nothing until graceful shutdown.
private struct UntilShutdown: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}
