import Foundation
import Synchronization

/// The customers whose bearer tokens this process has already resolved, so that a customer's requests after the
/// first skip the lookup: a token is issued once, never changes owner and is never revoked, so a remembered answer
/// cannot go stale. Only found tokens are remembered (an unknown one may be issued by another instance later), and
/// the cache is emptied whenever it reaches `capacity`, which bounds its memory.
final class CustomerTokenCache: Sendable {
    private let customers = Mutex<[String: UUID]>([:])
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// The customer `token` belongs to, if this process has resolved it before.
    func customer(for token: String) -> UUID? {
        customers.withLock { $0[token] }
    }

    /// Remembers that `token` belongs to `customer`.
    func remember(_ customer: UUID, for token: String) {
        customers.withLock { customers in
            if customers.count >= capacity { customers.removeAll(keepingCapacity: true) }
            customers[token] = customer
        }
    }

    /// How many tokens are remembered.
    var count: Int { customers.withLock { $0.count } }
}
