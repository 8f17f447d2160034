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
            .init(durability: .default, dataDirectory: dataDir.map { FilePath($0) }, port: port),
            logger: logger
        )
        let timings = server.timings
        let initdb = timings.initdb.map { "initdb \(milliseconds($0)) ms (cache was empty)" } ?? "template reused from cache"
        FileHandle.standardError.write(
            Data("\(initdb), copy \(milliseconds(timings.copy)) ms, start \(milliseconds(timings.start)) ms\n".utf8)
        )
        // Unbuffered: a parent reading this through a pipe must see the line now.
        FileHandle.standardOutput.write(
            Data("ready \(server.url()) \(server.dataDirectory) \(try server.postmasterProcessID())\n".utf8)
        )
        let group = ServiceGroup(
            services: [UntilShutdown()],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        try await group.run()
        try await server.stop()
    }
}

private func milliseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
}

/// A service that does nothing until graceful shutdown.
private struct UntilShutdown: Service {
    func run() async throws {
        // Not `gracefulShutdown()`, which can miss a signal that arrives while it starts (service-lifecycle 2.13.0).
        let (stopped, stop) = AsyncStream<Void>.makeStream()
        await withGracefulShutdownHandler {
            for await _ in stopped {}
        } onGracefulShutdown: {
            stop.finish()
        }
    }
}
