import Foundation

/// The figures of one `postbox bench bus` run, as a table or as JSON.
struct BusBenchmarkReport: Codable, Sendable {
    /// One line of the table: a measured value beside the limit or target it is judged against.
    struct Figure: Codable, Sendable {
        var name: String
        var value: Double
        var unit: String
        var reference: String
        var ratio: Double?
        var target: String
        var met: Bool
    }

    var machine: MachineDescription
    var connections: Int
    var seconds: Int64
    var batchSize: Int
    /// Each round's measurements, in the order they ran.
    var rounds: [BusBenchmarkRound]
    /// Each workload over all rounds.
    var limitSingleWork: Throughput
    var limitBatchedWork: Throughput
    var busSingleWork: Throughput
    var busBatchedWork: Throughput
    var redeliverySeconds: [Double]
    var restartRecovery: RestartRecovery?
    var date: Date

    init(
        machine: MachineDescription,
        connections: Int,
        seconds: Int64,
        batchSize: Int,
        rounds: [BusBenchmarkRound],
        redeliverySeconds: [Double],
        restartRecovery: RestartRecovery?,
        date: Date
    ) {
        self.machine = machine
        self.connections = connections
        self.seconds = seconds
        self.batchSize = batchSize
        self.rounds = rounds
        limitSingleWork = Throughput(combining: rounds.map(\.limitSingle))
        limitBatchedWork = Throughput(combining: rounds.map(\.limitBatched))
        busSingleWork = Throughput(combining: rounds.map(\.busSingle))
        busBatchedWork = Throughput(combining: rounds.map(\.busBatched))
        self.redeliverySeconds = redeliverySeconds
        self.restartRecovery = restartRecovery
        self.date = date
    }

    var limitSingle: Double { limitSingleWork.rate }
    var limitBatched: Double { limitBatchedWork.rate }
    var busSingle: Double { busSingleWork.rate }
    var busBatched: Double { busBatchedWork.rate }

    /// WAL per message of each workload, and the bus's against the limit's, as one line; nil without figures.
    var walSummary: String? {
        func bytes(_ work: Throughput) -> String? { work.walBytesPerMessage.map { String(format: "%.0f B", $0) } }
        func ratio(_ bus: Throughput, _ limit: Throughput) -> String {
            guard let bus = bus.walBytesPerMessage, let limit = limit.walBytesPerMessage, limit > 0 else { return "" }
            return String(format: " (%.1f× the limit's)", bus / limit)
        }
        guard let limitSingle = bytes(limitSingleWork), let busSingle = bytes(busSingleWork),
            let limitBatched = bytes(limitBatchedWork), let busBatched = bytes(busBatchedWork)
        else { return nil }
        return "WAL per message: limit 1/txn \(limitSingle), bus 1/txn \(busSingle)\(ratio(busSingleWork, limitSingleWork)); "
            + "limit \(batchSize)/txn \(limitBatched), bus \(batchSize)/txn \(busBatched)\(ratio(busBatchedWork, limitBatchedWork))"
    }

    /// The bus against the limit in each round, as one line; nil with a single round.
    var roundSummary: String? {
        guard rounds.count > 1 else { return nil }
        func list(_ ratio: (BusBenchmarkRound) -> Double, _ format: String) -> String {
            rounds.map { String(format: format, ratio($0)) }.joined(separator: ", ")
        }
        return "round by round: bus 1/txn \(list({ $0.busSingle.rate / $0.limitSingle.rate }, "%.2f")) of the limit; "
            + "bus \(batchSize)/txn \(list({ $0.busBatched.rate / $0.limitSingle.rate }, "%.2f×")) the 1/txn limit, "
            + "\(list({ $0.busBatched.rate / $0.limitBatched.rate }, "%.2f")) of the \(batchSize)/txn limit"
    }

    var figures: [Figure] {
        var figures = [
            Figure(
                name: "limit: plain SQL, 1 insert + 1 claim per transaction",
                value: limitSingle,
                unit: "msg/s",
                reference: "-",
                ratio: nil,
                target: "-",
                met: true
            ),
            Figure(
                name: "limit: plain SQL, \(batchSize) per transaction",
                value: limitBatched,
                unit: "msg/s",
                reference: "-",
                ratio: nil,
                target: "-",
                met: true
            ),
            Figure(
                name: "bus: 1 event per transaction",
                value: busSingle,
                unit: "msg/s",
                reference: "limit 1/txn",
                ratio: busSingle / limitSingle,
                target: ">= 0.70",
                met: busSingle / limitSingle >= 0.70
            ),
            Figure(
                name: "bus: \(batchSize) events per transaction",
                value: busBatched,
                unit: "msg/s",
                reference: "limit 1/txn",
                ratio: busBatched / limitSingle,
                target: ">= 5x",
                met: busBatched / limitSingle >= 5
            ),
            Figure(
                name: "bus: \(batchSize) events per transaction",
                value: busBatched,
                unit: "msg/s",
                reference: "limit \(batchSize)/txn",
                ratio: busBatched / limitBatched,
                target: ">= 0.70",
                met: busBatched / limitBatched >= 0.70
            ),
        ]
        if let restart = restartRecovery {
            figures.append(
                Figure(
                    name: "PostgreSQL restart → full throughput",
                    value: restart.recoveredSeconds,
                    unit: "s",
                    reference: "-",
                    ratio: nil,
                    target: "< 60 s",
                    met: restart.recovered
                )
            )
        }
        if let worst = redeliverySeconds.max() {
            figures.append(
                Figure(
                    name: "redelivery after SIGKILL (worst of \(redeliverySeconds.count))",
                    value: worst,
                    unit: "s",
                    reference: "target",
                    ratio: nil,
                    target: "<= 10 s",
                    met: worst <= 10
                )
            )
        }
        return figures
    }

    func table() -> String {
        var lines = [
            "postbox bench bus — \(ISO8601DateFormatter().string(from: date))",
            "machine: \(machine.summary)",
            "workload: \(connections) connections, ~200-byte JSON events; \(rounds.count) round(s) of \(seconds) s per workload "
                + "after 1 s warm-up, the limit right before the bus in each",
            "",
            column("figure", 52) + column("value", 14) + column("against", 16) + column("ratio", 9) + column("target", 10) + "met",
        ]
        for figure in figures {
            let value = figure.unit == "s" ? String(format: "%.2f s", figure.value) : String(format: "%.0f %@", figure.value, figure.unit)
            let ratio = figure.ratio.map { String(format: "%.2f", $0) } ?? "-"
            lines.append(
                column(figure.name, 52) + column(value, 14) + column(figure.reference, 16) + column(ratio, 9) + column(figure.target, 10)
                    + (figure.met ? "yes" : "NO")
            )
        }
        if let roundSummary {
            lines.append("")
            lines.append(roundSummary)
        }
        if let walSummary {
            lines.append("")
            lines.append(walSummary)
        }
        if let restart = restartRecovery {
            lines.append("")
            lines.append(
                String(
                    format: "restart: %.0f msg/s before; pg_ctl restart took %.2f s; back to %.0f%% of that rate %@",
                    restart.rateBefore,
                    restart.serverRestartSeconds,
                    BusBenchmark.recoveredShare * 100,
                    restart.recovered ? String(format: "%.2f s after the restart began", restart.recoveredSeconds) : "not within 60 s"
                )
            )
        }
        if !redeliverySeconds.isEmpty {
            lines.append("")
            lines.append("redelivery runs (s): " + redeliverySeconds.map { String(format: "%.2f", $0) }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    func json() throws -> String {
        struct Output: Codable {
            var report: BusBenchmarkReport
            var figures: [Figure]
        }
        return try prettyJSON(Output(report: self, figures: figures))
    }
}
