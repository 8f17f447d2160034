import EmbeddedPostgres
import Foundation
import Subprocess
import Testing

/// `postbox up` as a user runs it: everything comes up, and Ctrl-C leaves no process or port behind.
@Suite("postbox up")
struct UpCommandTests {
    struct State: Decodable {
        struct Entry: Decodable {
            var name: String
            var pid: Int32?
            var port: Int
        }
        var processes: [Entry]
    }

    /// A port base whose four service ports are free.
    func freePortBase() throws -> Int {
        for _ in 0..<50 {
            let base = Int.random(in: 20_000...40_000)
            if (base + 1...base + 4).allSatisfy(FreePort.isFree) { return base }
        }
        throw TimedOut()
    }

    @Test func ctrlCStopsEveryProcessAndFreesEveryPort() async throws {
        let base = try freePortBase()
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("postbox-up-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let spec = ProcessSpec(
            name: "postbox",
            executable: builtProduct("postbox"),
            arguments: ["up", "--no-build", "--port-base", "\(base)"],
            environment: ["POSTBOX_CACHE_DIR": cache, "NO_COLOR": "1"]
        )
        let stateFile = "\(cache)/up-\(base).json"
        let (seen, statuses) = try await withProcesses([spec]) { processes in
            let up = processes[0]
            try await eventually("postbox up ready\n\(up.tail)", timeout: .seconds(60)) {
                up.lines.contains { $0.contains("processes ready in") }
            }
            let state = try JSONDecoder().decode(State.self, from: Data(contentsOf: URL(fileURLWithPath: stateFile)))
            #expect(state.processes.map(\.name) == ["orders", "inventory", "payments", "payment-gateway"])
            #expect(state.processes.map(\.port) == [base + 1, base + 2, base + 3, base + 4])
            let postgresPort = up.lines.first { $0.contains("PostgreSQL") && $0.contains("ready at") }
                .flatMap { $0.split(separator: ":").last?.split(separator: "/").first }.flatMap { Int($0) }
            #expect(postgresPort != nil)
            for entry in state.processes { #expect(await HTTP.isReady(port: entry.port), "\(entry.name) ready") }
            up.send(SIGINT)
            try await eventually("postbox up exited\n\(up.tail)", timeout: .seconds(30)) { up.status != nil }
            return (state.processes.compactMap(\.pid), [base + 1, base + 2, base + 3, base + 4] + (postgresPort.map { [$0] } ?? []))
        }
        #expect(statuses["postbox"] == .exited(0))
        let (pids, ports) = seen
        #expect(pids.count == 4)
        for pid in pids { #expect(kill(pid, 0) == -1 && errno == ESRCH, "process \(pid) is gone") }
        for port in ports { #expect(FreePort.isFree(port), "port \(port) is free") }
        #expect(!FileManager.default.fileExists(atPath: stateFile))
    }
}
