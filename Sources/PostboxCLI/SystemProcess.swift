import Foundation

/// One executable of the system as `postbox up` runs it.
struct SystemProcess: Sendable, Hashable {
    /// The executable's name, which is also its name in logs (`orders`).
    let name: String
    /// Its port is the port base plus this.
    let portOffset: Int
    /// The database role it connects as.
    let role: String
    /// Whether several instances may run (the card-processor stand-in is one).
    let scalable: Bool

    static let all: [SystemProcess] = [
        SystemProcess(name: "orders", portOffset: 1, role: "orders", scalable: true),
        SystemProcess(name: "inventory", portOffset: 2, role: "inventory", scalable: true),
        SystemProcess(name: "payments", portOffset: 3, role: "payments", scalable: true),
        SystemProcess(name: "payment-gateway", portOffset: 4, role: "payment_gateway", scalable: false),
    ]

    static func named(_ name: String) -> SystemProcess? { all.first { $0.name == name } }
}

/// One running copy of a ``SystemProcess``.
struct ProcessInstance: Sendable, Hashable {
    let process: SystemProcess
    /// 1 for the first instance.
    let index: Int
    let port: Int

    /// `orders` for the first instance, `orders-2` for the second.
    var label: String { index == 1 ? process.name : "\(process.name)-\(index)" }
}

/// Parses `--instances orders=2,inventory=2` into a count per process name.
func parseInstances(_ text: String?) throws -> [String: Int] {
    var counts: [String: Int] = [:]
    guard let text, !text.isEmpty else { return counts }
    for item in text.split(separator: ",") {
        let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let process = SystemProcess.named(parts[0]), let count = Int(parts[1]), (1...8).contains(count)
        else {
            throw ValidationFailure(
                "--instances takes NAME=COUNT pairs (COUNT 1-8) of orders, inventory, payments; got '\(item)'"
            )
        }
        guard process.scalable || count == 1 else {
            throw ValidationFailure("\(process.name) runs as one instance; it is the stand-in for a third party")
        }
        counts[process.name] = count
    }
    return counts
}

/// The instances to run: first instances on base+1…base+4, extra ones from base+11 on.
func plannedInstances(portBase: Int, counts: [String: Int]) -> [ProcessInstance] {
    var instances: [ProcessInstance] = []
    var nextExtraPort = portBase + 11
    for process in SystemProcess.all {
        instances.append(ProcessInstance(process: process, index: 1, port: portBase + process.portOffset))
        for index in stride(from: 2, through: counts[process.name] ?? 1, by: 1) {
            instances.append(ProcessInstance(process: process, index: index, port: nextExtraPort))
            nextExtraPort += 1
        }
    }
    return instances
}
