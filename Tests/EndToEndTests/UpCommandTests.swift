import EmbeddedPostgres
import Foundation
import Subprocess
import Testing

/// `postbox up` as a user runs it: everything comes up, `postbox demo` and `postbox status` work against it, and
/// Ctrl-C leaves no process or port behind.
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

    @Test func theDemoAndStatusWorkAgainstItAndCtrlCLeavesNoProcessOrPortBehind() async throws {
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

            // The README's next two commands, against this system.
            let demo = try await postbox(["demo", "--port-base", "\(base)"], cache: cache)
            #expect(demo.status == .exited(0), "\(demo.output)")
            #expect(demo.output.contains("CONFIRMED  total 25.00  payment captured 25.00"), "\(demo.output)")
            #expect(demo.output.contains("CANCELLED  total 12.50  payment declined 12.50  (payment failed: declined)"), "\(demo.output)")
            #expect(demo.output.contains("REJECTED  total 40.00  no payment  (out of stock: demo-lamp-"), "\(demo.output)")
            #expect(demo.output.contains(#""onHand":8"#) && demo.output.contains(#""reserved":0"#), "\(demo.output)")
            let status = try await postbox(["status", "--port-base", "\(base)"], cache: cache)
            #expect(status.status == .exited(0), "\(status.output)")
            for name in ["orders", "inventory", "payments", "payment-gateway"] {
                #expect(status.output.split(separator: "\n").contains { $0.hasPrefix(name) && $0.contains("yes") }, "\(status.output)")
            }
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

        // With the system gone, the demo says what to start instead of a bare socket error.
        let unanswered = try await postbox(["demo", "--port-base", "\(base)"], cache: cache)
        #expect(unanswered.status != .exited(0))
        #expect(unanswered.output.contains("is `postbox up --port-base \(base)` running?"), "\(unanswered.output)")
    }

    private func postbox(_ arguments: [String], cache: String) async throws -> (status: TerminationStatus, output: String) {
        let result = try await Subprocess.run(
            .path(builtProduct("postbox")),
            arguments: Arguments(arguments),
            environment: .inherit.updating(["POSTBOX_CACHE_DIR": cache, "NO_COLOR": "1"]),
            output: .string(limit: 1 << 20),
            error: .string(limit: 1 << 20)
        )
        return (result.terminationStatus, result.standardOutput + result.standardError)
    }
}
