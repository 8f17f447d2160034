import Synchronization

/// The faults in force, in order; each request takes the first that applies to its endpoint.
final class FaultProgram: Sendable {
    private let faults = Mutex<[Fault]>([])

    init() {}

    var current: [Fault] { faults.withLock { $0 } }

    func replace(with program: [Fault]) {
        faults.withLock { $0 = program }
    }

    func clear() {
        faults.withLock { $0 = [] }
    }

    /// The fault for a request to `endpoint`, counting it against the fault's `count`.
    func take(for endpoint: Fault.Endpoint) -> Fault? {
        faults.withLock { faults in
            guard let index = faults.firstIndex(where: { $0.endpoint == nil || $0.endpoint == endpoint }) else { return nil }
            let fault = faults[index]
            if let count = fault.count {
                if count <= 1 { faults.remove(at: index) } else { faults[index].count = count - 1 }
            }
            return fault
        }
    }
}
