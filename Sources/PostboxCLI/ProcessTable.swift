import Foundation
import Synchronization

/// The pid and restart count of every child, kept in the state file `postbox status` reads.
final class ProcessTable: Sendable {
    private let state: Mutex<UpState>

    init(instances: [ProcessInstance], portBase: Int, databaseURL: String) {
        state = Mutex(
            UpState(
                supervisorPid: getpid(),
                portBase: portBase,
                databaseURL: databaseURL,
                processes: instances.map { .init(name: $0.label, pid: nil, port: $0.port, restarts: 0) }
            )
        )
    }

    func started(_ label: String, pid: Int32) {
        update(label) { $0.pid = pid }
    }

    func exited(_ label: String, restarting: Bool) {
        update(label) {
            $0.pid = nil
            if restarting { $0.restarts += 1 }
        }
    }

    var snapshot: UpState { state.withLock { $0 } }

    private func update(_ label: String, _ change: (inout UpState.Entry) -> Void) {
        // Written under the lock, so two updates cannot land in the file in the wrong order.
        state.withLock { state in
            if let index = state.processes.firstIndex(where: { $0.name == label }) { change(&state.processes[index]) }
            try? state.write()
        }
    }
}
