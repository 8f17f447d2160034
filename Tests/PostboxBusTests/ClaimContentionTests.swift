import Foundation
import PostgresNIO
import Testing

@testable import PostboxBus

/// Competing consumers of one subscription must not wait for each other's transactions while they claim.
@Suite("Claim contention", .timeLimit(.minutes(2)))
struct ClaimContentionTests {
    /// A claim whose snapshot is older than another consumer's claim of the same delivery still sees the row as it
    /// was. Had that row been updated, `FOR UPDATE SKIP LOCKED` could follow the update to the newer row and wait
    /// for the transaction acknowledging it, `SKIP LOCKED` notwithstanding. Two acknowledgements that each claim
    /// next then deadlock, until PostgreSQL fails one after `deadlock_timeout`. `bench bus` saw two to four of
    /// these in every ten seconds of batched work against a server with the default autovacuum naptime. A lease
    /// that deletes and inserts the delivery leaves nothing to follow. The race needs a backend to be descheduled at
    /// one exact instruction, so this test checks its precondition instead: neither claim updates a delivery.
    @Test func claimingLeavesNoUpdatedDeliveryForAnOlderSnapshotToFollow() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("contended"))
            let published = try await harness.publish([TestEvent(sequence: 1), TestEvent(sequence: 2)])
            let lease = Duration.seconds(30)
            let (next, changes) = try await harness.client.withTransaction(logger: testLogger) { connection in
                let before = try await Self.deliveryChanges(on: connection)
                let claim = DeliveryStatements.Claim(
                    subscription: "contended",
                    limit: 1,
                    token: UUID(),
                    owner: "a",
                    leaseSeconds: lease.seconds
                )
                var claimed: [ClaimedDelivery] = []
                for try await delivery in try await connection.execute(claim, logger: testLogger) {
                    claimed.append(delivery)
                }
                let first = try #require(claimed.first)
                let acknowledged = try await DeliveryStore.acknowledge(
                    deliveryIds: [first.deliveryId],
                    token: first.leaseToken,
                    owner: "a",
                    claimNext: 1,
                    subscription: "contended",
                    lease: lease,
                    on: connection,
                    logger: testLogger
                )
                let after = try await Self.deliveryChanges(on: connection)
                return (
                    acknowledged.next.first,
                    (
                        inserted: after.inserted - before.inserted, updated: after.updated - before.updated,
                        deleted: after.deleted - before.deleted
                    )
                )
            }
            // Both leases and the acknowledgement, and not one update among them.
            #expect(changes.updated == 0)
            #expect(changes.inserted == 2 && changes.deleted == 3)
            // The lease still holds: the second event is leased, with its attempt counted, to this owner only.
            let second = try #require(next)
            #expect(second.event.id == published[1].id && second.event.attempt == 1)
            #expect(
                try await harness.scalar(
                    "SELECT lease_token FROM bus.deliveries WHERE id = \(second.deliveryId)",
                    as: UUID.self
                ) == second.leaseToken
            )
            let store = DeliveryStore(client: harness.client, logger: testLogger)
            #expect(try await store.claim(subscription: "contended", limit: 1, lease: lease, owner: "b").isEmpty)
        }
    }

    /// This backend's inserts, updates and deletes in `bus.deliveries` not yet reported to the statistics: the
    /// current transaction's, and possibly earlier ones' (reported within a second of going idle).
    private static func deliveryChanges(
        on connection: PostgresConnection
    ) async throws -> (inserted: Int, updated: Int, deleted: Int) {
        let rows = try await connection.query(
            """
            SELECT n_tup_ins::int, n_tup_upd::int, n_tup_del::int FROM pg_stat_xact_user_tables
            WHERE schemaname = 'bus' AND relname = 'deliveries'
            """,
            logger: testLogger
        )
        for try await row in rows.decode((Int, Int, Int).self) { return row }
        throw HarnessError("bus.deliveries has no statistics row")
    }
}
