import Foundation
import Logging
import PostgresNIO
import Subprocess
import SystemPackage
import Testing

@testable import EmbeddedPostgres

private let logger: Logger = {
    var logger = Logger(label: "embedded-postgres.tests")
    logger.logLevel = .error
    return logger
}()

@Suite("Embedded PostgreSQL", .timeLimit(.minutes(2)))
struct EmbeddedPostgresTests {
    @Test func startsFromTheCachedTemplateAndAnswersQueries() async throws {
        let server = try await EmbeddedPostgres.start(.init(durability: .fast), logger: logger)
        #expect(server.timings.copy > .zero)
        try await server.execute(["CREATE TABLE t (x int)", "INSERT INTO t VALUES (1)"])
        #expect(try await count(server, "SELECT count(*)::int FROM t") == 1)
        let base = server.dataDirectory.removingLastComponent()
        try await server.stop()
        #expect(!FileManager.default.fileExists(atPath: base.string), "stop deletes a throwaway cluster")
    }

    @Test func restartsFastAndImmediatelyKeepingCommittedData() async throws {
        let server = try await EmbeddedPostgres.start(.init(durability: .fast), logger: logger)
        try await server.execute(["CREATE TABLE t (x int)", "INSERT INTO t VALUES (1)"])
        let before = try server.postmasterProcessID()
        try await server.restart(.fast)
        try await server.execute(["INSERT INTO t VALUES (2)"])
        try await server.restart(.immediate)
        #expect(try server.postmasterProcessID() != before)
        #expect(try await count(server, "SELECT count(*)::int FROM t") == 2)
        try await server.stop()
    }

    @Test func databasesClonedFromAPreparedTemplateAreIndependent() async throws {
        let server = try await EmbeddedPostgres.shared(logger: logger)
        let factory = DatabaseFactory(server: server, templateName: "factory_template", logger: logger) { config, logger in
            let connection = try await PostgresConnection.connect(
                configuration: .init(
                    host: config.host ?? "127.0.0.1",
                    port: config.port ?? 5432,
                    username: config.username,
                    password: nil,
                    database: config.database,
                    tls: .disable
                ),
                id: 1,
                logger: logger
            )
            try await connection.query("CREATE TABLE seeded (x int)", logger: logger)
            try await connection.query("INSERT INTO seeded VALUES (42)", logger: logger)
            try await connection.close()
        }
        let first = try await factory.makeDatabase(prefix: "clone")
        let second = try await factory.makeDatabase(prefix: "clone")
        #expect(first != second)
        try await server.execute(["DELETE FROM seeded"], database: first)
        #expect(try await count(server, "SELECT count(*)::int FROM seeded", database: first) == 0)
        #expect(try await count(server, "SELECT count(*)::int FROM seeded", database: second) == 1)
    }

    @Test func rejectsDatabaseNamesThatNeedQuoting() async throws {
        let server = try await EmbeddedPostgres.shared(logger: logger)
        await #expect(throws: EmbeddedPostgresError.self) { try await server.createDatabase("bad\"; DROP") }
    }

    @Test func missingBinariesAreReportedInOneLineThatSaysWhatToInstall() async throws {
        let error = await #expect(throws: EmbeddedPostgresError.self) {
            _ = try await PostgresInstallation.locate(
                environment: ["PATH": "/nonexistent"],
                searchWellKnownLocations: false
            )
        }
        #expect(error?.code == .binariesNotFound)
        #expect(error?.description.contains("apt-get install postgresql") == true)
        #expect(error?.description.contains("\n") == false)
    }

    @Test func leavesNoServerAndNoFilesBehindWhenItsParentIsKilled() async throws {
        let postbox = try postboxExecutable()
        let ready = try await Subprocess.run(
            .path(FilePath(postbox)),
            arguments: ["postgres"],
            input: .none,
            output: .sequence,
            error: .discarded
        ) { execution -> (dataDirectory: String, pid: Int32)? in
            for try await line in execution.standardOutput.strings() where line.hasPrefix("ready ") {
                let fields = line.split(separator: " ")
                try execution.send(signal: .kill)
                return (String(fields[2]), Int32(fields[3]) ?? 0)
            }
            return nil
        }
        #expect(ready.terminationStatus == .signaled(9))
        let (dataDirectory, pid) = try #require(ready.closureResult)
        #expect(pid > 0)
        let deadline = ContinuousClock.now + .seconds(20)
        while (kill(pid, 0) == 0 || FileManager.default.fileExists(atPath: dataDirectory)) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(kill(pid, 0) != 0, "the postmaster \(pid) is gone")
        #expect(!FileManager.default.fileExists(atPath: dataDirectory), "\(dataDirectory) is deleted")
    }
}

private func count(_ server: EmbeddedPostgres, _ sql: String, database: String = "postgres") async throws -> Int {
    let connection = try await PostgresConnection.connect(
        configuration: .init(
            host: server.host,
            port: server.port,
            username: server.superuser,
            password: nil,
            database: database,
            tls: .disable
        ),
        id: 1,
        logger: logger
    )
    defer { Task { try? await connection.close() } }
    let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
    for try await value in rows.decode(Int.self) { return value }
    return -1
}

/// The built `postbox` executable, which sits beside the test bundle.
private func postboxExecutable() throws -> String {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("postbox").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw EmbeddedPostgresError(.invalidArgument, "the postbox executable was not built beside the tests")
}
